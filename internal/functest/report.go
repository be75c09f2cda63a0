package functest

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// WriteText prints one line per case, PASS or FAIL, with the problems, the
// diff and the log of each failure, then a summary line.
func WriteText(w io.Writer, rep *Report) error {
	for _, r := range rep.Cases {
		status := "PASS"
		if !r.Pass {
			status = "FAIL"
		}
		fmt.Fprintf(w, "%s  %s:%d  %s", status, r.File, r.Line, r.Name)
		if r.Function != "" {
			fmt.Fprintf(w, " (%s)", r.Function)
		}
		fmt.Fprintln(w)
		if r.Pass {
			continue
		}
		for _, p := range r.Problems {
			fmt.Fprintf(w, "    %s\n", p)
		}
		if r.Diff != "" {
			fmt.Fprint(w, indent(r.Diff, "    "))
		}
		if r.Log != "" {
			fmt.Fprintln(w, "    log:")
			fmt.Fprint(w, indent(r.Log, "      "))
		}
	}
	_, err := fmt.Fprintf(w, "\n%d passed, %d failed\n", rep.Passed, rep.Failed)
	return err
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l == "" {
			continue
		}
		b.WriteString(prefix)
		b.WriteString(l)
	}
	if !strings.HasSuffix(b.String(), "\n") {
		b.WriteString("\n")
	}
	return b.String()
}

// WriteJSON prints the report as one JSON document (see docs/testing.md).
func WriteJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// The JUnit XML document, as CI systems read it.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit prints the report as JUnit XML: a testsuite per test file, a
// testcase per case, a failure with the problems, the diff and the log.
func WriteJUnit(w io.Writer, rep *Report) error {
	doc := junitSuites{Tests: len(rep.Cases), Failures: rep.Failed}
	index := map[string]int{}
	for _, r := range rep.Cases {
		i, ok := index[r.File]
		if !ok {
			i = len(doc.Suites)
			index[r.File] = i
			doc.Suites = append(doc.Suites, junitSuite{Name: r.File})
		}
		s := &doc.Suites[i]
		c := junitCase{Name: r.Name, Classname: r.File, Time: seconds(r.Ms)}
		s.Tests++
		if !r.Pass {
			s.Failures++
			msg := "the function did not do what the case expects"
			if len(r.Problems) > 0 {
				msg = r.Problems[0]
			}
			text := strings.Join(r.Problems, "\n")
			if r.Diff != "" {
				text += "\n" + r.Diff
			}
			if r.Log != "" {
				text += "\nlog:\n" + r.Log
			}
			c.Failure = &junitFailure{Message: msg, Text: strings.TrimLeft(text, "\n")}
		}
		s.Cases = append(s.Cases, c)
	}
	for i := range doc.Suites {
		var ms float64
		for _, c := range rep.Cases {
			if c.File == doc.Suites[i].Name {
				ms += c.Ms
			}
		}
		doc.Suites[i].Time = seconds(ms)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func seconds(ms float64) string { return fmt.Sprintf("%.3f", ms/1000) }
