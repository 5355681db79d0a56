package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/certmint/certmint/tools/bench"
)

func init() { extraCommands = append(extraCommands, newBenchCmd) }

// benchOptions are the flags of `certmint bench`.
type benchOptions struct {
	Server, Root, KeyType string
	HTTP01, DNS           string
	Insecure, JSON        bool
	Workers, Names        int
	Duration              time.Duration
}

func newBenchCmd() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load generator: complete ACME flows against any ACME server, then a report",
		Long: `Run complete ACME issuance flows (new order, http-01 answered by the bench
itself, finalize, download) with --workers concurrent accounts for --duration,
against any ACME server. A progress line goes to stderr every second; the
report (throughput, latency percentiles per step, errors by problem type, the
bench's own CPU per flow) goes to stdout, as JSON with --json.

Names are random labels under bench.test: the server must resolve them to the
bench (--dns-listen serves a resolver that answers 127.0.0.1 for every name)
and connect for http-01 to --http01-listen.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tuneGC() // the bench shares the CPU with the server it measures
			return runBench(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Server, "server", "", "ACME directory URL, e.g. https://127.0.0.1:8443/acme/directory")
	f.StringVar(&o.Root, "root", "", "PEM file with the root to trust (default: the system roots)")
	f.BoolVar(&o.Insecure, "insecure", false, "skip TLS certificate verification")
	f.IntVar(&o.Workers, "workers", 0, fmt.Sprintf("concurrent workers, one account each (1-%d)", bench.MaxWorkers))
	f.DurationVar(&o.Duration, "duration", 0, fmt.Sprintf("how long to run, e.g. 30s (at most %s)", bench.MaxDuration))
	f.IntVar(&o.Names, "names", 1, fmt.Sprintf("DNS names per order (1-%d)", bench.MaxNames))
	f.StringVar(&o.KeyType, "key-type", "ec256", "certificate key type: ec256 or rsa2048")
	f.StringVar(&o.HTTP01, "http01-listen", "127.0.0.1:5002", "address the bench answers http-01 on")
	f.StringVar(&o.DNS, "dns-listen", "", "also serve DNS here (UDP and TCP), answering 127.0.0.1 for every name")
	f.BoolVar(&o.JSON, "json", false, "print the report as JSON")
	return cmd
}

// validate checks the flags; bad usage is exit status 2.
func (o *benchOptions) validate() error {
	switch {
	case o.Server == "":
		return usagef("--server is required: the ACME directory URL, e.g. https://127.0.0.1:8443/acme/directory")
	case o.Duration == 0:
		return usagef("--duration is required, e.g. --duration 30s")
	case o.Duration < 0 || o.Duration > bench.MaxDuration:
		return usagef("--duration %s must be more than 0 and at most %s", o.Duration, bench.MaxDuration)
	case o.Workers < 1 || o.Workers > bench.MaxWorkers:
		return usagef("--workers %d must be 1..%d", o.Workers, bench.MaxWorkers)
	case o.Names < 1 || o.Names > bench.MaxNames:
		return usagef("--names %d must be 1..%d", o.Names, bench.MaxNames)
	case o.KeyType != "ec256" && o.KeyType != "rsa2048":
		return usagef("--key-type %q must be ec256 or rsa2048", o.KeyType)
	case o.Root != "" && o.Insecure:
		return usagef("give --root FILE or --insecure, not both")
	}
	u, err := url.Parse(o.Server)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return usagef("--server %q must be an http(s) URL, e.g. https://127.0.0.1:8443/acme/directory", o.Server)
	}
	for name, addr := range map[string]string{"--http01-listen": o.HTTP01, "--dns-listen": o.DNS} {
		if addr == "" && name == "--dns-listen" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return usagef("%s %q is not host:port, e.g. 127.0.0.1:5002", name, addr)
		}
	}
	return nil
}

func runBench(cmd *cobra.Command, o benchOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	cfg := bench.Config{Server: o.Server, Insecure: o.Insecure, Workers: o.Workers,
		Duration: o.Duration, Names: o.Names, KeyType: o.KeyType,
		HTTP01Listen: o.HTTP01, DNSListen: o.DNS, Progress: cmd.ErrOrStderr()}
	if o.Root != "" {
		pemBytes, err := os.ReadFile(o.Root)
		if err != nil {
			return usagef("cannot read --root %s: %v", o.Root, errors.Unwrap(err))
		}
		cfg.RootPEM = pemBytes
	}
	if f, ok := cmd.ErrOrStderr().(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			cfg.ProgressTTY = true
		}
	}
	// Ctrl-C ends the run early, with a report of what was done.
	ctx, stop := signal.NotifyContext(cmdContext(cmd), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if o.JSON {
		return rep.WriteJSON(cmd.OutOrStdout())
	}
	return rep.WriteText(cmd.OutOrStdout())
}

func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}
