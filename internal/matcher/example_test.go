package matcher_test

import (
	"fmt"

	"github.com/triggerbus/triggerbus/internal/matcher"
	"github.com/triggerbus/triggerbus/pkg/subjects"
)

func ExampleSet_Match() {
	set, err := matcher.Build([]matcher.Function{
		{Ref: "audit", TriggerType: "PRE_CREATE", Options: []string{subjects.Any}, Priority: 10},
		{Ref: "deny_big_servers", TriggerType: "PRE_CREATE", Options: []string{"SERVER"}, Priority: -100},
		{Ref: "name_disks", TriggerType: "PRE_CREATE", Options: []string{"DISK"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range set.Match("PRE_CREATE", "SERVER") {
		fmt.Println(e.Ref, e.Priority, e.FailurePolicy, e.Timeout)
	}
	fmt.Println(set.Wants("PRE_CREATE", "VDC"), set.Wants("PRE_DELETE", "VDC"))

	scheme, _ := subjects.NewScheme(subjects.DefaultPrefix)
	pre, post := set.Subscriptions(scheme)
	fmt.Println(pre, post)
	// Output:
	// deny_big_servers -100 fail 5s
	// audit 10 fail 5s
	// true false
	// [trigger.PRE_CREATE.*] []
}

func ExampleBuild_errors() {
	set, err := matcher.Build([]matcher.Function{
		{Ref: "ok", TriggerType: "POST_CREATE", Options: []string{"SERVER"}},
		{Ref: "deny_big", TriggerType: "PRE_CREATE", Options: []string{"SERVERR"}, Source: "scripts/quota.lua:3"},
	})
	fmt.Println(err)
	fmt.Println(set.Len(), "function served")
	// Output:
	// function "deny_big" (scripts/quota.lua:3): PRE_CREATE: unknown option "SERVERR" (did you mean "SERVER"?)
	// 1 function served
}
