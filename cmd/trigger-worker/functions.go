package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/internal/mailer"
	"github.com/triggerbus/triggerbus/internal/matcher"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/command"
	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
	"github.com/triggerbus/triggerbus/pkg/handlers/webhook"
	"github.com/triggerbus/triggerbus/pkg/schedule"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// loaded is the result of turning the configuration into functions.
type loaded struct {
	set     *matcher.Set
	kinds   map[string]string // ref -> handler kind
	closers []io.Closer
	// problems are everything check reports: a function that did not load,
	// an entry point a script describes but does not wire, a scripts.dir
	// that cannot be read. set holds the functions without problems.
	problems []error
}

// functions returns the functions of l without problems, for the worker.
func (l *loaded) functions() []worker.Function {
	entries := l.set.Entries()
	fns := make([]worker.Function, len(entries))
	for i, e := range entries {
		fns[i] = e.Function
	}
	return fns
}

// close releases the handlers' resources.
func (l *loaded) close() error {
	var errs []error
	for _, c := range l.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// loadFunctions builds the handlers of the config's functions and of the
// scripts in scripts.dir, and the matcher set of those that are valid.
// Every problem is returned with the set of the rest. It is the one
// validation of functions: check lists its problems, run refuses to start
// on any, and a reload keeps the old functions on any (unless partial
// loading is allowed, see [loaded.accept]). store keeps the dataStore maps
// of Lua functions; nil (check) makes their dataStore calls fail.
func loadFunctions(cfg config.Config, log *slog.Logger, store lua.DataStore) *loaded {
	l := &loaded{kinds: map[string]string{}}
	luaOpts, err := luaOptions(cfg, log, store)
	if err != nil {
		l.problems = append(l.problems, err)
	}
	var fns []worker.Function
	src := cfg.File
	if src == "" {
		src = "config"
	}
	lines := config.KeyLines(cfg.File)
	// at names where a key of the config file is: "file:line key".
	at := func(key string) string {
		if n := lines[key]; n > 0 {
			return fmt.Sprintf("%s:%d %s", src, n, key)
		}
		return src + " " + key
	}
	for i, f := range cfg.Functions {
		where := at(fmt.Sprintf("functions[%d]", i))
		h, kind, closer, err := buildHandler(f, luaOpts, cfg.Subjects.Prefix)
		if err != nil {
			l.problems = append(l.problems, fmt.Errorf("function %q (%s): %w", f.Ref, where, err))
			continue
		}
		if closer != nil {
			l.closers = append(l.closers, closer)
		}
		l.kinds[f.Ref] = kind
		fn := worker.Function{
			Ref:           f.Ref,
			TriggerType:   f.TriggerType,
			Options:       f.TriggerOptions,
			Priority:      f.Priority,
			FailurePolicy: worker.FailurePolicy(f.FailurePolicy),
			Mode:          worker.Mode(f.Mode),
			Timeout:       f.Timeout,
			Source:        where,
			Handler:       h,
		}
		if f.Schedule != nil {
			sc, err := schedule.Parse(f.Schedule.Every, f.Schedule.Cron, f.Schedule.Timezone, f.Schedule.Start)
			if err == nil {
				sc, err = sc.WithOwner(schedule.Owner{BEUUID: f.Schedule.BEUUID, CustomerUUID: f.Schedule.CustomerUUID})
			}
			if err != nil {
				l.problems = append(l.problems, fmt.Errorf("function %q (%s): %w", f.Ref, where, err))
				continue
			}
			fn.Schedule = sc
		}
		fns = append(fns, fn)
	}
	if cfg.Scripts.Dir != "" {
		sfs, unwired, err := lua.LoadScriptsReport(cfg.Scripts.Dir, luaOpts)
		var pe *fs.PathError
		switch {
		case errors.As(err, &pe) && len(sfs) == 0 && len(unwired) == 0:
			// The directory itself: not one script could be read.
			l.problems = append(l.problems, fmt.Errorf("%s: %q cannot be read: %w", at("scripts.dir"), cfg.Scripts.Dir, pe.Err))
		case err != nil:
			l.problems = append(l.problems, splitJoined(err)...)
		}
		for _, u := range unwired {
			l.problems = append(l.problems, fmt.Errorf("%s:%d: entry point %s (ref %q, %s) is %s: add it to register() or remove its description",
				u.File, u.Line, u.Entry, u.Ref, u.TriggerType, u.Reason))
		}
		for _, sf := range sfs {
			l.kinds[sf.Ref] = "lua"
			l.closers = append(l.closers, sf.Handler)
			fn, err := scriptFunction(sf)
			if err != nil {
				l.problems = append(l.problems, err)
				continue
			}
			fns = append(fns, fn)
		}
	}
	set, err := matcher.Build(fns)
	if err != nil {
		l.problems = append(l.problems, splitJoined(err)...)
	}
	l.set = set
	return l
}

// accept decides whether the functions of l may be served: with no
// problem always, with problems only when partial loading is allowed. It
// logs what it decides about the problems: nothing when there are none, a
// warning for each when partial loading lets them through.
func (l *loaded) accept(allowPartial bool, log *slog.Logger) bool {
	if len(l.problems) == 0 {
		return true
	}
	if !allowPartial {
		return false
	}
	for _, p := range l.problems {
		log.Warn("allow_partial: function not loaded", "err", p)
	}
	log.Warn("allow_partial is set: serving the functions that loaded, without the ones with problems",
		"functions", l.set.Len(), "problems", len(l.problems))
	return true
}

// loadConfig is cf.load for check and run: a config that does not load
// (bad YAML, an unknown key, a bad value) is listed as its problems, the
// way writeProblems lists those of the functions.
func loadConfig(cf *commonFlags, stderr io.Writer) (config.Config, error) {
	cfg, err := cf.load()
	var ue *usageError
	if err != nil && errors.As(err, &ue) && !errors.Is(err, errQuiet) {
		writeProblems(stderr, splitJoined(ue.err))
		return cfg, &usageError{err: errQuiet}
	}
	return cfg, err
}

// writeProblems lists problems the way check and run print them.
func writeProblems(w io.Writer, problems []error) {
	fmt.Fprintf(w, "\n%d problem(s):\n", len(problems))
	for _, p := range problems {
		fmt.Fprintf(w, "  - %v\n", p)
	}
}

// noFunctionsWarning is what check and run say when there is nothing to
// serve.
const noFunctionsWarning = "no functions: nothing is subscribed; set scripts.dir or functions"

// scriptFunction is the function of a script's entry point, with the
// schedule it describes.
func scriptFunction(sf lua.ScriptFunction) (worker.Function, error) {
	src := sf.File
	if sf.Line > 0 {
		src = fmt.Sprintf("%s:%d", sf.File, sf.Line)
	}
	fn := worker.Function{
		Ref:         sf.Ref,
		TriggerType: sf.TriggerType,
		Options:     sf.TriggerOptions,
		Priority:    sf.Priority,
		Source:      src,
		Handler:     sf.Handler,
	}
	if sf.Schedule != nil {
		sc, err := schedule.ParseFDL(sf.Schedule)
		if err == nil {
			sc, err = sc.WithOwner(sf.Owner)
		}
		if err != nil {
			return fn, fmt.Errorf("function %q (%s): schedule: %w", sf.Ref, src, err)
		}
		fn.Schedule = sc
	}
	return fn, nil
}

// scriptFunctions is scriptFunction of each entry point, for
// `trigger-worker test`.
func scriptFunctions(sfs []lua.ScriptFunction) ([]worker.Function, error) {
	fns := make([]worker.Function, 0, len(sfs))
	var errs []error
	for _, sf := range sfs {
		fn, err := scriptFunction(sf)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fns = append(fns, fn)
	}
	return fns, errors.Join(errs...)
}

// splitJoined lists the errors of an errors.Join.
func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// luaOptions are the options of every Lua function, from scripts.dir and
// from functions' lua files alike: the scripts section, the email relay
// (one rate limit for all of them) and store. An email section that does
// not make a relay (a CA file that cannot be read) is an error; the options
// then have no relay.
func luaOptions(cfg config.Config, log *slog.Logger, store lua.DataStore) (lua.Options, error) {
	s := cfg.Scripts
	o := lua.Options{
		Logger:    log,
		APIPrefix: s.APIPrefix,
		MaxMemory: s.MaxMemoryBytes,
		HTTP:      lua.HTTPOptions{DenyPrivateNetworks: s.DenyPrivateNetworks},
		DataStore: store,
	}
	if len(s.Messages) > 0 {
		o.Messages = make(map[string]string, len(s.Messages))
		for _, m := range s.Messages {
			o.Messages[m.Key] = m.Text
		}
	}
	if e := cfg.Email; e.Host != "" {
		m, err := mailer.New(mailer.Config{
			Host: e.Host, Port: e.Port, TLS: e.TLS, CA: e.CA,
			Username: e.Username, Password: string(e.Password), From: e.From,
			RatePerMinute: e.RatePerMinute, Timeout: e.Timeout,
		})
		if err != nil {
			return o, fmt.Errorf("email: %w", err)
		}
		o.Mail = m
	}
	return o, nil
}

// buildHandler makes the handler of one configured function; luaOpts are
// the options of every FDL script, prefix the subject prefix (a CloudEvents
// webhook's type starts with it).
func buildHandler(f config.Function, luaOpts lua.Options, prefix string) (handlers.Handler, string, io.Closer, error) {
	switch {
	case f.Lua != nil:
		sfs, err := lua.LoadScript(f.Lua.File, luaOpts)
		if err != nil {
			return nil, "", nil, err
		}
		var pick *lua.ScriptFunction
		for i := range sfs {
			if f.Lua.Entry == "" || sfs[i].Entry == f.Lua.Entry || sfs[i].Ref == f.Lua.Entry {
				if pick != nil && f.Lua.Entry == "" {
					return nil, "", nil, fmt.Errorf("lua: %s has several entry points, name one with lua.entry", f.Lua.File)
				}
				pick = &sfs[i]
			}
		}
		if pick == nil {
			return nil, "", nil, fmt.Errorf("lua: %s has no entry point %q", f.Lua.File, f.Lua.Entry)
		}
		return pick.Handler, "lua", pick.Handler, nil
	case f.Webhook != nil:
		w, err := webhook.New(webhook.Config{
			URL:                 f.Webhook.URL,
			Secret:              string(f.Webhook.Secret),
			Timeout:             f.Webhook.Timeout,
			Headers:             f.Webhook.Headers,
			CA:                  f.Webhook.CA,
			MaxBodyBytes:        f.Webhook.MaxBodyBytes,
			DenyPrivateNetworks: f.Webhook.DenyPrivateNetworks,
			Format:              f.Webhook.Format,
			Prefix:              prefix,
		})
		if err != nil {
			return nil, "", nil, err
		}
		return w, "webhook", w, nil
	case f.Exec != nil:
		e, err := command.New(command.Config{
			Command:        f.Exec.Command,
			Env:            f.Exec.Env,
			Dir:            f.Exec.Dir,
			MaxOutputBytes: f.Exec.MaxOutputBytes,
		})
		if err != nil {
			return nil, "", nil, err
		}
		return e, "exec", nil, nil
	}
	return nil, "", nil, errors.New("no handler: set one of lua, webhook, exec")
}

// relPath shortens p for display when it is under the working directory.
func relPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		if wd, err := filepath.Abs("."); err == nil {
			if r, err := filepath.Rel(wd, abs); err == nil && !strings.HasPrefix(r, "..") {
				return r
			}
		}
	}
	return p
}
