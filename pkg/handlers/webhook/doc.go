// Package webhook is the webhook handler kind: a [Handler] POSTs each event
// to a URL, signed per Standard Webhooks when the config has a secret, and
// reads the function's result from the response with
// [handlers.ParseResult].
//
//	h, err := webhook.New(webhook.Config{URL: "https://hooks.example.com/cpu", Secret: secret})
//	...
//	defer h.Close()
//
// A non-2xx answer is an *[HTTPError]. With [Config.DenyPrivateNetworks] the
// handler refuses to reach addresses that are not public, checked on each
// address dialled, after name resolution ([ErrPrivateNetwork]).
package webhook
