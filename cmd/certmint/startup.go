package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/certmint/certmint/ca/crl"
	"github.com/certmint/certmint/internal/atomicfile"
	"github.com/certmint/certmint/internal/quickstart"
)

// readyReport is what --ready-file holds once every listener serves: the
// real addresses (port 0 on the command line becomes the port the kernel
// chose) and the URLs clients use. Scripts and tests start the server on
// port 0 and read this instead of guessing a free port, which another
// process can take first.
type readyReport struct {
	PID           int    `json:"pid"`
	Listen        string `json:"listen"`                   // --listen as bound, e.g. 127.0.0.1:41234
	AdminListen   string `json:"admin_listen"`             // --admin-listen as bound
	CRLListen     string `json:"crl_listen,omitempty"`     // --crl-listen as bound, when on
	MetricsListen string `json:"metrics_listen,omitempty"` // --metrics-listen as bound, when on
	DirectoryURL  string `json:"directory_url"`            // the ACME directory
	ConsoleURL    string `json:"console_url"`
	CRLURL        string `json:"crl_url,omitempty"`
	MetricsURL    string `json:"metrics_url,omitempty"`
	RootFile      string `json:"root_file"` // PEM of the root to trust (DATA/ca/root.pem)
}

func (a *app) readyReport() readyReport {
	names := a.opts.Hostnames
	r := readyReport{PID: os.Getpid(),
		Listen: a.ln.ACME.Addr().String(), AdminListen: a.ln.Admin.Addr().String(),
		DirectoryURL: a.directoryURL(), ConsoleURL: clientURL("https", a.ln.Admin, names),
		RootFile: a.rootFile()}
	if a.ln.CRL != nil {
		r.CRLListen, r.CRLURL = a.ln.CRL.Addr().String(), clientURL("http", a.ln.CRL, names)+crl.DERPath
	}
	if a.ln.Metrics != nil {
		r.MetricsListen, r.MetricsURL = a.ln.Metrics.Addr().String(), clientURL("http", a.ln.Metrics, names)+"/metrics"
	}
	return r
}

// rootFile is the absolute path of DATA/ca/root.pem, so a command that
// names it works from any directory.
func (a *app) rootFile() string {
	p := filepath.Join(a.opts.Data, "ca", "root.pem")
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// announce logs the startup line, with URLs that work as printed, and
// writes --ready-file when asked.
func (a *app) announce() error {
	r := a.readyReport()
	args := []any{"acme", r.DirectoryURL, "console", r.ConsoleURL}
	if r.CRLURL != "" {
		args = append(args, "crl", r.CRLURL)
	}
	if r.MetricsURL != "" {
		args = append(args, "metrics", r.MetricsURL)
	}
	args = append(args, "root", r.RootFile, "root_sha256", a.ca.RootFingerprint())
	a.log.Info("certmint serving", args...)
	// The first certificate, as the dashboard shows it.
	first := []any{}
	for _, c := range quickstart.Commands(quickstart.Server{DirectoryURL: r.DirectoryURL, RootFile: r.RootFile, HTTP01Port: a.opts.HTTP01Port}) {
		first = append(first, c.Client, c.Line)
	}
	a.log.Info("first certificate on this machine (as root: certbot keeps /etc/letsencrypt, ports below 1024 are privileged; see the dashboard)", first...)
	if a.opts.ReadyFile == "" {
		return nil
	}
	data, _ := json.MarshalIndent(r, "", "  ")
	if err := atomicfile.Write(a.opts.ReadyFile, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("--ready-file: %w", err)
	}
	return nil
}

// removeReadyFile takes the report away on shutdown, so nobody reads the
// addresses of a server that is gone.
func (a *app) removeReadyFile() {
	if a.opts.ReadyFile != "" {
		_ = os.Remove(a.opts.ReadyFile)
	}
}
