package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/triggerbus/triggerbus/pkg/handlers/lua"
	"github.com/triggerbus/triggerbus/pkg/worker"
)

// benchScript is the PRE Lua scenario's function: an FDL trigger that reads
// p.input.cpu and returns CONTINUE, as small as a real quota check.
const benchScript = `function register()
  return {"bench_quota"}
end

function bench_quota(p)
  if p == nil then
    return {
      ref = "bench_quota",
      name = "Bench quota",
      description = "trigger-bench: reads p.input.cpu, returns CONTINUE",
      priority = 0,
      triggerType = "PRE_CREATE",
      triggerOptions = {"SERVER"},
      api = "TRIGGER",
      version = 1,
    }
  end
  local cpu = p.input.cpu
  if cpu ~= nil and cpu > 1024 then
    return {exitState = "FAILED", errorCode = "QUOTA_EXCEEDED", errorMessage = "too many CPUs"}
  end
  return {exitState = "CONTINUE"}
end
`

// luaFunction loads benchScript with lua.LoadScript and returns its
// function, and what to close when done.
func luaFunction() (worker.Function, io.Closer, error) {
	dir, err := os.MkdirTemp("", "trigger-bench-lua-")
	if err != nil {
		return worker.Function{}, nil, err
	}
	path := filepath.Join(dir, "bench.lua")
	if err := os.WriteFile(path, []byte(benchScript), 0o600); err != nil {
		return worker.Function{}, nil, errors.Join(err, os.RemoveAll(dir))
	}
	sfs, err := lua.LoadScript(path, lua.Options{})
	if err != nil {
		return worker.Function{}, nil, errors.Join(fmt.Errorf("lua: %w", err), os.RemoveAll(dir))
	}
	if len(sfs) != 1 {
		return worker.Function{}, nil, errors.Join(fmt.Errorf("lua: %d entry points in the bench script, want 1", len(sfs)), os.RemoveAll(dir))
	}
	sf := sfs[0]
	f := worker.Function{
		Ref:         sf.Ref,
		TriggerType: sf.TriggerType,
		Options:     sf.TriggerOptions,
		Priority:    sf.Priority,
		Source:      path,
		Handler:     sf.Handler,
	}
	return f, &luaCloser{h: sf.Handler, dir: dir}, nil
}

// luaCloser closes the script's handler and removes its directory.
type luaCloser struct {
	h   io.Closer
	dir string
}

func (c *luaCloser) Close() error { return errors.Join(c.h.Close(), os.RemoveAll(c.dir)) }
