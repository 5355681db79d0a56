package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Report is the result of a run. Its JSON form (--json) is a stable
// interface for scripts: fields are only ever added.
type Report struct {
	Server   string  `json:"server"`
	Workers  int     `json:"workers"`
	Names    int     `json:"names"`    // identifiers per order
	KeyType  string  `json:"key_type"` // certificate key type
	Duration float64 `json:"duration_seconds"`

	// Flows counts complete flows; each issued and downloaded one
	// certificate, so it is also the number of certificates.
	Flows      int64   `json:"flows"`
	Errors     int64   `json:"errors"`    // failed flows
	Abandoned  int64   `json:"abandoned"` // cut off after the grace period
	Retries    int64   `json:"bad_nonce_retries"`
	Throughput float64 `json:"flows_per_second"`
	// RequestsPerFlow counts every ACME request of the run (polls and
	// newNonce included) over flows: what the server had to answer.
	RequestsPerFlow float64 `json:"requests_per_flow"`

	Flow  Latency   `json:"flow_latency"`
	Steps []Latency `json:"steps"`

	ErrorTypes []ErrorCount `json:"errors_by_type"`

	// BenchCPUPerFlowMs is the bench's own user+system CPU time over the
	// run divided by flows: what the client took from the shared cores.
	BenchCPUSeconds   float64 `json:"bench_cpu_seconds"`
	BenchCPUPerFlowMs float64 `json:"bench_cpu_per_flow_ms"`
}

// Latency summarises one histogram, in milliseconds.
type Latency struct {
	Name  string  `json:"name"`
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// ErrorCount is one group of failed flows.
type ErrorCount struct {
	Type    string `json:"type"`    // problem type URN, or a class like "connection error"
	Count   int64  `json:"count"`   // failed flows
	Example string `json:"example"` // the first one's step and detail
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func summarize(name string, h *Histogram) Latency {
	return Latency{Name: name, Count: h.Count(), Mean: ms(h.Mean()),
		P50: ms(h.Percentile(50)), P90: ms(h.Percentile(90)),
		P99: ms(h.Percentile(99)), Max: ms(h.Max())}
}

// buildReport turns the collected stats into a Report. elapsed is the
// measured wall time of the flow phase, cpu the bench's CPU time over it.
func buildReport(cfg Config, s *Stats, elapsed, cpu time.Duration) *Report {
	r := &Report{
		Server: cfg.Server, Workers: cfg.Workers, Names: cfg.Names, KeyType: cfg.KeyType,
		Duration:        elapsed.Seconds(),
		Flows:           s.OK.Load(),
		Errors:          s.Failed.Load(),
		Abandoned:       s.Abandoned.Load(),
		Retries:         s.Retries.Load(),
		Flow:            summarize("flow", &s.Flow),
		ErrorTypes:      s.ErrorCounts(),
		BenchCPUSeconds: cpu.Seconds(),
	}
	for i := range s.Steps {
		r.Steps = append(r.Steps, summarize(StepNames[i], &s.Steps[i]))
	}
	if elapsed > 0 {
		r.Throughput = float64(r.Flows) / elapsed.Seconds()
	}
	if r.Flows > 0 {
		r.BenchCPUPerFlowMs = ms(cpu) / float64(r.Flows)
		r.RequestsPerFlow = float64(s.Requests.Load()) / float64(r.Flows)
	}
	return r
}

// WriteJSON writes the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people: totals, a latency table and the
// error groups.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "server      %s\n", r.Server)
	fmt.Fprintf(&b, "workers     %d, %d name(s) per order, %s certificate keys\n", r.Workers, r.Names, r.KeyType)
	fmt.Fprintf(&b, "duration    %.2fs\n", r.Duration)
	fmt.Fprintf(&b, "flows       %d ok (certificates), %d errors, %d abandoned, %d badNonce retries\n",
		r.Flows, r.Errors, r.Abandoned, r.Retries)
	fmt.Fprintf(&b, "throughput  %.1f flows/s, %.1f requests/flow\n", r.Throughput, r.RequestsPerFlow)
	fmt.Fprintf(&b, "bench CPU   %.2fs, %.3f ms/flow\n\n", r.BenchCPUSeconds, r.BenchCPUPerFlowMs)
	fmt.Fprintf(&b, "%-11s %8s %9s %9s %9s %9s %9s\n", "latency", "count", "mean", "p50", "p90", "p99", "max")
	row := func(l Latency) {
		fmt.Fprintf(&b, "%-11s %8d %7.2fms %7.2fms %7.2fms %7.2fms %7.2fms\n", l.Name, l.Count, l.Mean, l.P50, l.P90, l.P99, l.Max)
	}
	row(r.Flow)
	for _, l := range r.Steps {
		row(l)
	}
	if len(r.ErrorTypes) > 0 {
		b.WriteString("\nerrors\n")
		for _, e := range r.ErrorTypes {
			fmt.Fprintf(&b, "  %s x%d  (e.g. %s)\n", e.Type, e.Count, e.Example)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
