package handlers_test

import (
	"testing"

	"github.com/triggerbus/triggerbus/pkg/handlers"
	"github.com/triggerbus/triggerbus/pkg/handlers/handlerstest"
)

func TestLuaConformance(t *testing.T) {
	kind := func(body string) func(t *testing.T) handlers.Handler {
		return func(t *testing.T) handlers.Handler { return luaFunc(t, body) }
	}
	handlerstest.Run(t, handlerstest.Kind{
		Name:     "lua",
		Continue: kind(`  return { exitState = "CONTINUE" }`),
		Fail:     kind(`  return { exitState = "FAILED", errorCode = "QUOTA_EXCEEDED", errorMessage = "too many CPUs" }`),
		Modify: kind(`  p.input.cpu = p.input.cpu * 2
  p.input.tagged = true
  return { exitState = "SUCCESS" }`),
		Hang:  kind(`  while true do pcall(function() while true do end end) end`),
		Error: kind(`  error("boom")`),
	})
}
