// Package netguard holds the checks the HTTP-speaking handler kinds (the
// webhook kind and the Lua kind's FDLHTTPHelper) apply to what they reach
// and show: [Control] refuses to dial an address that is not public,
// [NonPublic] says why an address is not, [ValidHeaderName] checks a header
// name a function gives, and [RedactURL] hides the secrets of a URL before
// it goes into an error or a log.
package netguard
