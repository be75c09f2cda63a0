package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/triggerbus/triggerbus/pkg/client"
	"github.com/triggerbus/triggerbus/pkg/event"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

// runEmit publishes a POST event or asks for a PRE decision and prints the
// outcome as JSON.
func runEmit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cf := newCommonFlags("emit", stderr)
	timeout := cf.fs.Duration("timeout", 5*time.Second, "how long to wait for a PRE decision")
	durable := cf.fs.Bool("durable", false, "publish POST events through JetStream and wait for the stream's ack")
	cf.fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: trigger-worker emit [flags] TYPE OPTION [JSON|@file]")
		cf.fs.PrintDefaults()
	}
	if err := cf.parse(args); err != nil {
		return err
	}
	rest := cf.fs.Args()
	if len(rest) < 2 || len(rest) > 3 {
		cf.fs.Usage()
		return usagef("emit takes TYPE OPTION [JSON|@file]")
	}
	typ, option := rest[0], rest[1]
	t, err := subjects.Lookup(typ)
	if err != nil {
		return &usageError{err}
	}
	ev := &event.Event{}
	if len(rest) == 3 {
		data := []byte(rest[2])
		if name, ok := strings.CutPrefix(rest[2], "@"); ok {
			if data, err = os.ReadFile(name); err != nil {
				return usagef("event file: %w", err)
			}
		}
		if err := json.Unmarshal(data, ev); err != nil {
			return usagef("event JSON: %w", err)
		}
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	nc, err := connectTool(cfg.NATS, "trigger-worker emit")
	if err != nil {
		return err
	}
	defer nc.Close()
	c, err := client.New(nc, client.Options{Prefix: cfg.Subjects.Prefix, Durable: *durable})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if t.IsPre() {
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		d, err := c.Decide(ctx, typ, option, ev)
		if err != nil {
			return &usageError{err}
		}
		return enc.Encode(d)
	}
	pctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	id, err := c.Publish(pctx, typ, option, ev)
	if err != nil {
		return &usageError{err}
	}
	if err := nc.FlushWithContext(pctx); err != nil {
		return err
	}
	subject, _ := subjects.NewScheme(cfg.Subjects.Prefix)
	return enc.Encode(map[string]string{"id": id, "subject": subject.Pattern(typ, option)})
}
