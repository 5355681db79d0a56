package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func sampleStats() *Stats {
	s := &Stats{}
	for i := 1; i <= 100; i++ {
		s.Flow.Record(time.Duration(i) * time.Millisecond)
		for st := range s.Steps {
			s.Steps[st].Record(time.Duration(i*(st+1)) * 100 * time.Microsecond)
		}
	}
	s.OK.Store(100)
	s.Requests.Store(650)
	s.Retries.Store(3)
	s.AddError(badNonce, "newOrder: stale")
	return s
}

func TestBuildReport(t *testing.T) {
	cfg := Config{Server: "https://ca.test/dir", Workers: 8, Names: 2, KeyType: "ec256"}
	r := buildReport(cfg, sampleStats(), 2*time.Second, 300*time.Millisecond)
	if r.Flows != 100 || r.Errors != 1 || r.Retries != 3 {
		t.Errorf("flows %d errors %d retries %d", r.Flows, r.Errors, r.Retries)
	}
	if r.Throughput != 50 {
		t.Errorf("throughput %v, want 50 flows/s", r.Throughput)
	}
	if r.BenchCPUPerFlowMs != 3 {
		t.Errorf("bench CPU per flow %v ms, want 3", r.BenchCPUPerFlowMs)
	}
	if r.RequestsPerFlow != 6.5 {
		t.Errorf("requests per flow %v", r.RequestsPerFlow)
	}
	if r.Flow.P50 < 49.5 || r.Flow.P50 > 50.5 || r.Flow.Max != 100 || r.Flow.Count != 100 {
		t.Errorf("flow latency %+v", r.Flow)
	}
	var names []string
	for _, st := range r.Steps {
		names = append(names, st.Name)
		if st.Count != 100 || st.P99 <= 0 || st.P99 > st.Max {
			t.Errorf("step %+v", st)
		}
	}
	if got := strings.Join(names, ","); got != "newOrder,authz,challenge,validation,finalize,download" {
		t.Errorf("steps %s", got)
	}
	if len(r.ErrorTypes) != 1 || r.ErrorTypes[0].Type != badNonce {
		t.Errorf("errors %+v", r.ErrorTypes)
	}
}

func TestBuildReportNoFlows(t *testing.T) {
	r := buildReport(Config{Workers: 1}, &Stats{}, time.Second, time.Second)
	if r.Flows != 0 || r.BenchCPUPerFlowMs != 0 || r.Throughput != 0 || len(r.Steps) != numSteps {
		t.Errorf("%+v", r)
	}
}

// TestReportJSONFields pins the JSON names scripts rely on.
func TestReportJSONFields(t *testing.T) {
	r := buildReport(Config{Server: "s", Workers: 1, Names: 1, KeyType: "ec256"}, sampleStats(), time.Second, time.Second)
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"server", "workers", "names", "key_type", "duration_seconds", "flows",
		"errors", "abandoned", "bad_nonce_retries", "flows_per_second", "requests_per_flow",
		"flow_latency", "steps", "errors_by_type", "bench_cpu_seconds", "bench_cpu_per_flow_ms"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	step := m["steps"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "count", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"} {
		if _, ok := step[k]; !ok {
			t.Errorf("step JSON lacks %q", k)
		}
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back.Flows != r.Flows || back.Steps[5].Name != "download" {
		t.Errorf("round trip: %v %+v", err, back)
	}
}

func TestReportText(t *testing.T) {
	r := buildReport(Config{Server: "https://ca.test/dir", Workers: 8, Names: 1, KeyType: "ec256"},
		sampleStats(), 2*time.Second, 300*time.Millisecond)
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"throughput  50.0 flows/s", "100 ok", "1 errors", "3.000 ms/flow",
		"\nflow ", "\nvalidation ", "\ndownload ", badNonce + " x1", "newOrder: stale"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
