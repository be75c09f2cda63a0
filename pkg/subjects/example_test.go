package subjects_test

import (
	"fmt"

	"github.com/triggerbus/triggerbus/pkg/subjects"
)

func ExampleScheme_Parse() {
	s, _ := subjects.NewScheme(subjects.DefaultPrefix)
	subj, err := s.Parse("trigger.POST_CREATE.SERVER")
	fmt.Println(subj.Type.Name, subj.Type.Phase, subj.Option, err)
	_, err = s.Parse("trigger.POST_CREATE.SERVERR")
	fmt.Println(err)
	// Output:
	// POST_CREATE POST SERVER <nil>
	// unknown option "SERVERR" for POST_CREATE (did you mean "SERVER"?)
}

func ExampleScheme_Build() {
	s, _ := subjects.NewScheme("fco.eu1.trigger")
	subj, _ := s.Build("PRE_AUTH", subjects.Any)
	fmt.Println(subj)
	fmt.Println(s.Pattern("PRE_CREATE", subjects.Any))
	// Output:
	// fco.eu1.trigger.PRE_AUTH.ANY
	// fco.eu1.trigger.PRE_CREATE.*
}
