package mailer_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/triggerbus/triggerbus/internal/mailer"
	"github.com/triggerbus/triggerbus/internal/mailer/mailertest"
)

func TestSend(t *testing.T) {
	tests := []struct {
		name    string
		opts    []mailertest.Option
		tls     string
		user    string
		wantTLS bool
	}{
		{"starttls with auth", []mailertest.Option{mailertest.WithAuth("bot", "s3cret")}, mailer.TLSStartTLS, "bot", true},
		{"implicit tls", []mailertest.Option{mailertest.WithImplicitTLS()}, mailer.TLSImplicit, "", true},
		{"no tls", nil, mailer.TLSNone, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailertest.Run(t, tt.opts...)
			cfg := mailer.Config{Host: srv.Host, Port: srv.Port, TLS: tt.tls, CA: srv.CA, From: "triggers@example.com"}
			if tt.user != "" {
				cfg.Username, cfg.Password = "bot", "s3cret"
			}
			m, err := mailer.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = m.Send(t.Context(), mailer.Message{
				To: []string{"ops@example.com"}, Cc: []string{"be@example.com"}, Bcc: []string{"audit@example.com"},
				ReplyTo: "be@example.com", Subject: "SERVER SHUTDOWN ALERT", Body: "web-1 has stopped",
			})
			if err != nil {
				t.Fatalf("Send() = %v", err)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("server got %d messages, want 1", len(msgs))
			}
			got := msgs[0]
			if got.From != "triggers@example.com" || got.User != tt.user || got.TLS != tt.wantTLS ||
				!slices.Equal(got.To, []string{"ops@example.com", "be@example.com", "audit@example.com"}) {
				t.Errorf("message = %+v", got)
			}
			for _, want := range []string{"Subject: SERVER SHUTDOWN ALERT", "Reply-To: <be@example.com>", "From: <triggers@example.com>",
				"To: <ops@example.com>", "Cc: <be@example.com>", "web-1 has stopped"} {
				if !strings.Contains(got.Data, want) {
					t.Errorf("message data has no %q:\n%s", want, got.Data)
				}
			}
			if strings.Contains(got.Data, "audit@example.com") {
				t.Errorf("Bcc shows in the message:\n%s", got.Data)
			}
		})
	}
}

func TestSendRefused(t *testing.T) {
	srv := mailertest.Run(t, mailertest.WithAuth("bot", "s3cret"))
	base := mailer.Config{Host: srv.Host, Port: srv.Port, CA: srv.CA, From: "triggers@example.com", Username: "bot", Password: "s3cret"}
	m, err := mailer.New(base)
	if err != nil {
		t.Fatal(err)
	}
	many := make([]string, mailer.MaxRecipients+1)
	for i := range many {
		many[i] = "x@example.com"
	}
	for _, tt := range []struct {
		name string
		msg  mailer.Message
	}{
		{"no recipient", mailer.Message{Subject: "x"}},
		{"bad address", mailer.Message{To: []string{"not an address"}}},
		{"too many", mailer.Message{To: many}},
	} {
		if err := m.Send(t.Context(), tt.msg); !errors.Is(err, mailer.ErrBadMessage) {
			t.Errorf("Send(%s) = %v, want ErrBadMessage", tt.name, err)
		}
	}

	wrong := base
	wrong.Password = "nope"
	mw, err := mailer.New(wrong)
	if err != nil {
		t.Fatal(err)
	}
	if err := mw.Send(t.Context(), mailer.Message{To: []string{"ops@example.com"}}); err == nil {
		t.Error("Send() with a wrong password = nil, want an error")
	}

	noCA := base
	noCA.CA = ""
	mc, err := mailer.New(noCA)
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.Send(t.Context(), mailer.Message{To: []string{"ops@example.com"}}); err == nil {
		t.Error("Send() to a relay whose certificate is not trusted = nil, want an error")
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("server got %d messages, want none", n)
	}
}

func TestSendRateLimited(t *testing.T) {
	srv := mailertest.Run(t)
	m, err := mailer.New(mailer.Config{Host: srv.Host, Port: srv.Port, TLS: mailer.TLSNone, From: "triggers@example.com", RatePerMinute: 2})
	if err != nil {
		t.Fatal(err)
	}
	msg := mailer.Message{To: []string{"ops@example.com"}, Subject: "x"}
	for i := range 2 {
		if err := m.Send(t.Context(), msg); err != nil {
			t.Fatalf("Send() #%d = %v", i+1, err)
		}
	}
	if err := m.Send(t.Context(), msg); !errors.Is(err, mailer.ErrRateLimited) {
		t.Fatalf("Send() #3 = %v, want ErrRateLimited", err)
	}
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("server got %d messages, want 2", n)
	}
}

func TestNewInvalid(t *testing.T) {
	for _, cfg := range []mailer.Config{
		{From: "a@example.com"},
		{Host: "smtp.example.com"},
		{Host: "smtp.example.com", From: "not an address"},
		{Host: "smtp.example.com", From: "a@example.com", TLS: "ssl"},
		{Host: "smtp.example.com", From: "a@example.com", Port: 70000},
		{Host: "smtp.example.com", From: "a@example.com", RatePerMinute: -1},
		{Host: "smtp.example.com", From: "a@example.com", CA: "/nonexistent/ca.pem"},
	} {
		if _, err := mailer.New(cfg); !errors.Is(err, mailer.ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}
