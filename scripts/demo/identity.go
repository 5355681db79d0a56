package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Workload identities of the demo: the trust domain certmint serves, and
// the SPIFFE path each service's EAB key binds.
const (
	trustDomain  = "corp.example"
	intruderName = "batch.demo.test"
)

var workloadPaths = map[string]string{
	receiverName: "payments/receiver",
	senderName:   "payments/sender",
	intruderName: "reports/batch", // valid certificate, other identity
}

func workloadID(svc string) string { return "spiffe://" + trustDomain + "/" + workloadPaths[svc] }

// workloadKey creates the EAB key that binds svc's workload identity and
// returns the agent flags that use it, the HMAC key in a 0600 file (not
// on the command line, where ps shows it).
func (d *demo) workloadKey(certmint, data, svc string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, certmint, "admin", "eab", "create", "--data", data,
		"--label", svc, "--workload", workloadPaths[svc]).Output()
	if err != nil {
		return nil, fmt.Errorf("admin eab create for %s: %v", svc, err)
	}
	var kid, hmac string
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "KID="); ok {
			kid = v
		}
		if v, ok := strings.CutPrefix(line, "HMAC="); ok {
			hmac = v
		}
	}
	if kid == "" || hmac == "" {
		return nil, fmt.Errorf("admin eab create for %s printed no KID/HMAC", svc)
	}
	file := filepath.Join(d.dir, svc+".eab-hmac")
	if err := os.WriteFile(file, []byte(hmac+"\n"), 0o600); err != nil {
		return nil, err
	}
	fmt.Printf("  key     %-19s EAB key %s binds %s\n", svc, kid, workloadID(svc))
	return []string{"--eab-kid", kid, "--eab-hmac-file", file}, nil
}

// obtainOnce runs `certmint agent --once` and prints its line.
func (d *demo) obtainOnce(certmint string, args []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, certmint, append(args, "--once")...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("agent --once: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if e, ok := parseLine("agent", line); ok {
			e.at = time.Since(d.start)
			d.print(e)
		}
	}
	return nil
}

// intruderCalls has the third service, whose certificate is as valid as
// the sender's but names another workload, call the receiver once, and
// reports whether it got through. The receiver's refusal arrives as its
// own event.
func (d *demo) intruderCalls(mtls, url, connect string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, mtls, "sender", "--cert-dir", filepath.Join(d.dir, "intruder"),
		"--receiver", url, "--connect", connect, "--count", "1").CombinedOutput()
	at := time.Since(d.start)
	stamp := fmt.Sprintf("%2d:%02d", int(at.Minutes()), int(at.Seconds())%60)
	if err == nil {
		fmt.Printf("%s  %-19s CALL GOT THROUGH as %s\n%s", stamp, intruderName, workloadID(intruderName), out)
		return true
	}
	why := "refused"
	for _, line := range strings.Split(string(out), "\n") {
		if f := fields(line); f["msg"] == "call failed" {
			why = f["err"]
		}
	}
	fmt.Printf("%s  %-19s call as %s turned away: %s\n", stamp, intruderName, workloadID(intruderName), why)
	return false
}

// dnsPart drops the SPIFFE ID from mtls-demo's peer list ("spiffe://...,
// receiver.demo.test"), leaving the names.
func dnsPart(peer string) string {
	var out []string
	for _, p := range strings.Split(peer, ",") {
		if !strings.HasPrefix(p, "spiffe://") {
			out = append(out, p)
		}
	}
	return strings.Join(out, ",")
}

// quietHandshakeError picks the receiver's handshake errors the demo has
// shown already or that mean nothing: the refusal of a caller (its
// "refused" line says it) and the readiness probe's bare connect (EOF).
func quietHandshakeError(msg string) bool {
	if !strings.HasPrefix(msg, "http: TLS handshake error") {
		return false
	}
	return strings.HasSuffix(msg, ": EOF") || strings.Contains(msg, "identity not allowed") || strings.Contains(msg, "no workload identity")
}
