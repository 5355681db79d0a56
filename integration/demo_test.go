package integration

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMakeDemo runs `make demo` as a new user would (with the binaries
// built into a temporary BIN): certmint, two agents on 2-minute
// certificates, mtls-demo's receiver and sender on the agents' files. It
// must exit 0 within 5 minutes, show each certificate renewed at least
// twice, and calls that kept succeeding across the renewals; and the
// receiver, which allows only the sender's workload identity, refusing a
// third service whose certificate is as valid but names another.
func TestMakeDemo(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		if isCI() {
			t.Fatal("make is not installed")
		}
		t.Skip("make is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "make", "-s", "-C", "..", "demo", "BIN="+t.TempDir())
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("make demo: %v after %s\n%s", err, took.Round(time.Second), out)
	}
	t.Logf("make demo took %s", took.Round(time.Second))
	text := string(out)
	for _, svc := range []string{"receiver.demo.test", "sender.demo.test"} {
		if n := len(regexp.MustCompile(`(?m)^\s*\d+:\d\d\s+`+regexp.QuoteMeta(svc)+`\s+issued\s+serial [0-9a-f]+`).FindAllString(text, -1)); n != 1 {
			t.Errorf("%s issued %d times, want 1:\n%s", svc, n, text)
		}
		if n := len(regexp.MustCompile(`(?m)^\s*\d+:\d\d\s+`+regexp.QuoteMeta(svc)+`\s+renewed\s+serial [0-9a-f]+`).FindAllString(text, -1)); n < 2 {
			t.Errorf("%s renewed %d times, want at least 2:\n%s", svc, n, text)
		}
	}
	// Calls succeeded after the last renewal, with the renewed certificates.
	lines := strings.Split(text, "\n")
	last := -1
	for i, l := range lines {
		if strings.Contains(l, " renewed  serial ") {
			last = i
		}
	}
	okAfter := 0
	for _, l := range lines[last+1:] {
		if strings.Contains(l, "call ok  receiver.demo.test presented serial") {
			okAfter++
		}
	}
	if okAfter == 0 || strings.Contains(text, "CALL FAILED") {
		t.Errorf("want calls succeeding after the last renewal and none failing:\n%s", text)
	}
	for _, want := range []string{
		`(?m)^\s*\d+:\d\d\s+sender\.demo\.test\s+issued\s+serial [0-9a-f]+ .* spiffe://corp\.example/payments/sender$`,
		`(?m)^\s*\d+:\d\d\s+batch\.demo\.test\s+call as spiffe://corp\.example/reports/batch turned away`,
		`(?m)^\s*\d+:\d\d\s+receiver\.demo\.test\s+refused\s+spiffe://corp\.example/reports/batch \(batch\.demo\.test, serial [0-9a-f]+, a valid certificate of this CA\)`,
		`the receiver refused [1-9]\d* callers with another identity`,
	} {
		if !regexp.MustCompile(want).MatchString(text) {
			t.Errorf("no line matching %s:\n%s", want, text)
		}
	}
	if strings.Contains(text, "CALL GOT THROUGH") {
		t.Errorf("the service with another identity got through:\n%s", text)
	}
	// Nothing the demo does itself shows up as a warning: its readiness
	// checks read what the processes report, they do not probe.
	if strings.Contains(text, "TLS handshake error") {
		t.Errorf("the demo's output has a TLS handshake error:\n%s", text)
	}
	m := regexp.MustCompile(`summary: (\d+) calls, (\d+) ok, 0 failed .* the sender saw (\d+) receiver certificates and the receiver saw (\d+) sender certificates`).FindStringSubmatch(text)
	if m == nil || m[1] != m[2] || atoi(m[3]) < 3 || atoi(m[4]) < 3 || !strings.Contains(text, "demo: ok") {
		t.Errorf("summary missing or wrong:\n%s", text)
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
