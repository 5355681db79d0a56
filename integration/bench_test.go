package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certmint/certmint/storage"
	"github.com/certmint/certmint/tools/bench"
)

// TestBench runs the real `certmint bench` against a test server, as a
// user would, and checks the report against what the server stored.
func TestBench(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	root := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(root, s.RootPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, names, duration string) bench.Report {
		t.Helper()
		out, errOut, code := runCLI(t, nil, "bench", "--server", s.DirectoryURL(), "--root", root,
			"--workers", "2", "--duration", duration, "--names", names,
			"--http01-listen", fmt.Sprintf("127.0.0.1:%d", s.HTTPPort), "--json")
		if code != 0 {
			t.Fatalf("bench exited %d: %s\nserver: %s", code, errOut, s.Output())
		}
		if !strings.Contains(errOut, "flows") {
			t.Errorf("no progress line on stderr: %q", errOut)
		}
		var r bench.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("report is not JSON: %v\n%s", err, out)
		}
		if r.Flows == 0 || r.Errors != 0 || r.Abandoned != 0 || len(r.ErrorTypes) != 0 {
			t.Fatalf("flows %d errors %d abandoned %d %+v", r.Flows, r.Errors, r.Abandoned, r.ErrorTypes)
		}
		if r.Flow.Count != uint64(r.Flows) || r.Flow.P50 <= 0 || r.Flow.P99 < r.Flow.P50 || r.Flow.Max < r.Flow.P99 {
			t.Errorf("flow latency %+v", r.Flow)
		}
		if len(r.Steps) != 6 {
			t.Fatalf("steps %+v", r.Steps)
		}
		for _, st := range r.Steps {
			if st.Count != uint64(r.Flows) || st.P50 <= 0 || st.P90 < st.P50 || st.P99 < st.P90 || st.Max < st.P99 {
				t.Errorf("step %s: %+v", st.Name, st)
			}
		}
		if r.Throughput <= 0 || r.BenchCPUPerFlowMs <= 0 {
			t.Errorf("throughput %v, bench CPU/flow %v ms, requests/flow %v", r.Throughput, r.BenchCPUPerFlowMs, r.RequestsPerFlow)
		}
		return r
	}
	// certmint answers a challenge once it is validated, so a flow needs
	// no polls: newOrder, one authz fetch and one challenge per name,
	// finalize, download.
	one := run(t, "1", "3s")
	if one.RequestsPerFlow != 5 {
		t.Errorf("names 1, requests/flow %v, want 5", one.RequestsPerFlow)
	}
	two := run(t, "2", "2s")
	if two.Names != 2 || two.RequestsPerFlow != 7 {
		t.Errorf("names %d, requests/flow %v, want 7", two.Names, two.RequestsPerFlow)
	}

	// Every flow the bench counted is a certificate the server stored,
	// and no more.
	s.Stop()
	ctx := context.Background()
	st, err := storage.Open(ctx, filepath.Join(s.Data, "certmint.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := st.CountCertificates(ctx, storage.CertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if n != one.Flows+two.Flows {
		t.Errorf("server stored %d certificates, the bench reported %d + %d", n, one.Flows, two.Flows)
	}
}

// TestBenchBadUsage checks that bad flags exit 2 with one line naming
// the flag, before anything is started.
func TestBenchBadUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no-duration", []string{"--server", "https://127.0.0.1:1/acme/directory", "--workers", "2"}, "--duration"},
		{"workers-0", []string{"--server", "https://127.0.0.1:1/acme/directory", "--workers", "0", "--duration", "1s"}, "--workers"},
		{"workers-too-many", []string{"--server", "https://127.0.0.1:1/acme/directory", "--workers", "1000", "--duration", "1s"}, "--workers"},
		{"duration-too-long", []string{"--server", "https://127.0.0.1:1/acme/directory", "--workers", "1", "--duration", "2h"}, "--duration"},
		{"no-server", []string{"--workers", "1", "--duration", "1s"}, "--server"},
		{"root-and-insecure", []string{"--server", "https://127.0.0.1:1/acme/directory", "--workers", "1", "--duration", "1s", "--root", "x.pem", "--insecure"}, "--insecure"},
		{"key-type", []string{"--server", "https://127.0.0.1:1/acme/directory", "--workers", "1", "--duration", "1s", "--key-type", "dsa"}, "--key-type"},
		{"bad-duration", []string{"--server", "https://127.0.0.1:1/acme/directory", "--workers", "1", "--duration", "soon"}, "duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, nil, append([]string{"bench"}, tc.args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", code, errOut)
			}
			if lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n"); len(lines) != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr should be one line naming %s: %q", tc.want, errOut)
			}
			if out != "" {
				t.Errorf("stdout %q", out)
			}
		})
	}
}
