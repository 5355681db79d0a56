package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/certmint/certmint/acme/agent"
)

// report prints one line per agent action on stdout, unless --quiet.
func (d *agentDaemon) report(e agent.Event) {
	if d.o.Quiet {
		return
	}
	writeEventLine(d.stdout, d.o.Names, e)
}

// writeEventLine is the agent's line per action, key=value so that a
// script can read it too; a certificate with a workload identity adds it:
//
//	renewed names=svc.internal serial=4f0c... expires=2026-12-01T10:00:00Z next_check=2026-11-30T04:12:09Z identity=spiffe://corp.example/payments/sender
func writeEventLine(w io.Writer, names []string, e agent.Event) {
	leaf := e.Cert.Leaf
	id := ""
	if sid, err := x509svid.IDFromCert(leaf); err == nil {
		id = " identity=" + sid.String()
	}
	fmt.Fprintf(w, "%s names=%s serial=%s expires=%s next_check=%s%s\n", e.Action,
		strings.Join(names, ","), leaf.SerialNumber.Text(16),
		leaf.NotAfter.UTC().Format(time.RFC3339), e.NextCheck.UTC().Format(time.RFC3339), id)
}
