package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/triggerbus/triggerbus/config"
	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/matcher"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// loaded is the result of turning the configuration into functions.
type loaded struct {
	set       *matcher.Set
	kinds     map[string]string // ref -> handler kind
	schedules map[string]*worker.Schedule
	unwired   []handlers.UnwiredFunction
	closers   []io.Closer
	problems  []error
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
// Every problem is returned with the set of the rest.
func loadFunctions(cfg config.Config, log *slog.Logger) *loaded {
	l := &loaded{kinds: map[string]string{}, schedules: map[string]*worker.Schedule{}}
	var fns []matcher.Function
	src := cfg.File
	if src == "" {
		src = "config"
	}
	for i, f := range cfg.Functions {
		where := fmt.Sprintf("%s functions[%d]", src, i)
		h, kind, closer, err := buildHandler(f, cfg.Scripts, log)
		if err != nil {
			l.problems = append(l.problems, fmt.Errorf("function %q (%s): %w", f.Ref, where, err))
			continue
		}
		if closer != nil {
			l.closers = append(l.closers, closer)
		}
		l.kinds[f.Ref] = kind
		var value any = h
		if f.Schedule != nil {
			sc, err := worker.ParseSchedule(f.Schedule.Every, f.Schedule.Cron, f.Schedule.Timezone, f.Schedule.Start)
			if err != nil {
				l.problems = append(l.problems, fmt.Errorf("function %q (%s): %w", f.Ref, where, err))
				continue
			}
			value = &worker.Scheduled{Handler: h, Schedule: sc}
			l.schedules[f.Ref] = sc
		}
		fns = append(fns, matcher.Function{
			Ref:           f.Ref,
			TriggerType:   f.TriggerType,
			Options:       f.TriggerOptions,
			Priority:      f.Priority,
			FailurePolicy: matcher.FailurePolicy(f.FailurePolicy),
			Mode:          matcher.Mode(f.Mode),
			Timeout:       f.Timeout,
			Scheduled:     f.Schedule != nil,
			Source:        where,
			Value:         value,
		})
	}
	if cfg.Scripts.Dir != "" {
		sfs, unwired, err := handlers.LoadScriptsReport(cfg.Scripts.Dir, handlers.LuaOptions{
			Logger:    log,
			APIPrefix: cfg.Scripts.APIPrefix,
			HTTP:      handlers.FDLHTTPOptions{DenyPrivateNetworks: cfg.Scripts.DenyPrivateNetworks},
		})
		if err != nil {
			l.problems = append(l.problems, splitJoined(err)...)
		}
		l.unwired = unwired
		for _, sf := range sfs {
			l.kinds[sf.Ref] = "lua"
			l.closers = append(l.closers, sf.Handler)
			fn := scriptFunction(sf)
			if sf.Schedule != nil {
				sc, err := worker.ParseFDLSchedule(sf.Schedule)
				if err != nil {
					l.problems = append(l.problems, fmt.Errorf("function %q (%s): schedule: %w", sf.Ref, fn.Source, err))
					continue
				}
				fn.Value = &worker.Scheduled{Handler: sf.Handler, Schedule: sc}
				l.schedules[sf.Ref] = sc
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

func scriptFunction(sf handlers.ScriptFunction) matcher.Function {
	src := sf.File
	if sf.Line > 0 {
		src = fmt.Sprintf("%s:%d", sf.File, sf.Line)
	}
	return matcher.Function{
		Ref:         sf.Ref,
		TriggerType: sf.TriggerType,
		Options:     sf.TriggerOptions,
		Priority:    sf.Priority,
		Scheduled:   sf.Schedule != nil,
		Source:      src,
		Value:       sf.Handler,
	}
}

// splitJoined lists the errors of an errors.Join.
func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// buildHandler makes the handler of one configured function; scripts holds
// the settings of every FDL script.
func buildHandler(f config.Function, scripts config.Scripts, log *slog.Logger) (handlers.Handler, string, io.Closer, error) {
	switch {
	case f.Lua != nil:
		sfs, err := handlers.LoadScript(f.Lua.File, handlers.LuaOptions{
			Logger: log,
			HTTP:   handlers.FDLHTTPOptions{DenyPrivateNetworks: scripts.DenyPrivateNetworks},
		})
		if err != nil {
			return nil, "", nil, err
		}
		var pick *handlers.ScriptFunction
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
		w, err := handlers.NewWebhook(handlers.WebhookConfig{
			URL:                 f.Webhook.URL,
			Secret:              string(f.Webhook.Secret),
			Timeout:             f.Webhook.Timeout,
			Headers:             f.Webhook.Headers,
			CA:                  f.Webhook.CA,
			MaxBodyBytes:        f.Webhook.MaxBodyBytes,
			DenyPrivateNetworks: f.Webhook.DenyPrivateNetworks,
		})
		if err != nil {
			return nil, "", nil, err
		}
		return w, "webhook", w, nil
	case f.Exec != nil:
		e, err := handlers.NewExec(handlers.ExecConfig{
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
