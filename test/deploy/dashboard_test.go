package deploy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"testing"
)

const dashboardFile = "deploy/grafana/triggerbus.json"

// dashboard is the part of a Grafana dashboard model the tests look at.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Repeat     string         `json:"repeat"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []struct {
		Expr       string         `json:"expr"`
		RefID      string         `json:"refId"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels  []panel `json:"panels"` // of a collapsed row
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	Datasource *datasourceRef  `json:"datasource"`
}

// queryText is a query variable's query: a string or {"query": "..."}.
func (v variable) queryText() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var q struct{ Query string }
	_ = json.Unmarshal(v.Query, &q)
	return q.Query
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data := readRepoFile(t, dashboardFile)
	if !json.Valid(data) {
		t.Fatalf("%s is not valid JSON", dashboardFile)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels returns the panels with the panels of collapsed rows.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

func TestDashboardStructure(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: want both", d.UID, d.Title)
	}
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d, want 39 or later", d.SchemaVersion)
	}

	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if ds, ok := vars["datasource"]; !ok || ds.Type != "datasource" || ds.queryText() != "prometheus" {
		t.Errorf("want a datasource variable of type prometheus, got %+v", ds)
	}
	if inst, ok := vars["instance"]; !ok || !inst.Multi || !inst.IncludeAll {
		t.Errorf("want a multi-value instance variable with All, got %+v", inst)
	}

	const dsUID = "${datasource}"
	ids := map[int]string{}
	var repeated bool
	for _, p := range allPanels(d.Panels) {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			if p.Repeat != "" {
				if _, ok := vars[p.Repeat]; !ok {
					t.Errorf("row %q repeats by undefined variable %q", p.Title, p.Repeat)
				}
				repeated = repeated || p.Repeat == "instance"
			}
			continue
		}
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v", p.Title, p.GridPos)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != dsUID {
			t.Errorf("panel %q: datasource %+v, want uid %s", p.Title, p.Datasource, dsUID)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("panel %q: query %s has no expr", p.Title, tg.RefID)
			}
			if tg.Datasource != nil && tg.Datasource.UID != dsUID {
				t.Errorf("panel %q: query %s datasource %+v, want uid %s", p.Title, tg.RefID, tg.Datasource, dsUID)
			}
			if refs[tg.RefID] {
				t.Errorf("panel %q: refId %q used twice", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
		}
	}
	if !repeated {
		t.Error("want a row repeated by instance (the per-worker row)")
	}
}

var labelValues = regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`)

// TestDashboardMetricsExported checks every metric the dashboard queries
// against what a worker exports, and that it shows every trigger_ metric.
func TestDashboardMetricsExported(t *testing.T) {
	d := loadDashboard(t)
	exp := workerMetrics(t)
	used := map[string]bool{}
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			for _, n := range checkExpr(t, fmt.Sprintf("panel %q", p.Title), tg.Expr, exp) {
				used[n] = true
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.queryText())
		if m == nil {
			t.Errorf("variable %s: query %q, want label_values(<selector>, <label>)", v.Name, v.queryText())
			continue
		}
		for _, n := range checkExpr(t, "variable "+v.Name, m[1], exp) {
			used[n] = true
		}
	}
	for _, name := range exp.triggerFamilies() {
		if !used[name] && !used[name+"_bucket"] {
			t.Errorf("the dashboard does not show %s", name)
		}
	}
	// The panels the dashboard is for.
	for _, title := range []string{
		"Events/s by trigger type", "PRE decisions", "PRE denial ratio", "Function latency p50 / p99",
		"Errors and timeouts", "Dropped by reason", "In flight", "Dead letters", "NATS connection",
		"Redeliveries", "Schedule fires", "Config last reload", "Reload failures",
	} {
		if !slices.ContainsFunc(allPanels(d.Panels), func(p panel) bool { return p.Title == title }) {
			t.Errorf("no panel %q", title)
		}
	}
}
