// Package bench is a lean ACME load generator: workers run complete
// RFC 8555 issuance flows (new order, http-01 answered by the bench
// itself, finalize, download) against any ACME server for a fixed time,
// and a report gives throughput, per-step latency percentiles and errors
// grouped by problem type.
//
// It shares the machine's cores with the server it measures, so it is
// written to cost little: the standard library and acme/jws only, one
// keep-alive HTTP client, nonces reused from every response, a small pool
// of pre-generated certificate keys, fixed-memory histograms. It reports
// its own CPU time per flow so that cost is known.
package bench

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// Limits on a run, so a typo cannot start an unbounded load.
const (
	MaxWorkers  = 256
	MaxDuration = time.Hour
	MaxNames    = 100
)

// Config is one run. Server, Workers and Duration are required.
type Config struct {
	Server   string // ACME directory URL
	RootPEM  []byte // trust only these roots; nil: the system's
	Insecure bool   // skip TLS verification
	Workers  int
	Duration time.Duration
	Names    int    // identifiers per order (default 1)
	KeyType  string // "ec256" (default) or "rsa2048"

	HTTP01Listen string // default 127.0.0.1:5002
	DNSListen    string // "" for none
	Domain       string // parent of the random names (default bench.test)

	// Grace is how long in-flight flows may run past Duration before they
	// are abandoned (default 5s).
	Grace time.Duration
	// Progress receives a line a second; nil for none. ProgressTTY
	// rewrites one line with \r instead.
	Progress    io.Writer
	ProgressTTY bool
}

func (c *Config) setDefaults() error {
	if c.Names == 0 {
		c.Names = 1
	}
	if c.KeyType == "" {
		c.KeyType = "ec256"
	}
	if c.HTTP01Listen == "" {
		c.HTTP01Listen = "127.0.0.1:5002"
	}
	if c.Domain == "" {
		c.Domain = "bench.test"
	}
	if c.Grace <= 0 {
		c.Grace = 5 * time.Second
	}
	switch {
	case c.Server == "":
		return errors.New("no server URL")
	case c.Workers < 1 || c.Workers > MaxWorkers:
		return fmt.Errorf("workers must be 1..%d", MaxWorkers)
	case c.Duration <= 0 || c.Duration > MaxDuration:
		return fmt.Errorf("duration must be more than 0 and at most %s", MaxDuration)
	case c.Names < 1 || c.Names > MaxNames:
		return fmt.Errorf("names must be 1..%d", MaxNames)
	case c.KeyType != "ec256" && c.KeyType != "rsa2048":
		return fmt.Errorf("key type %q: use ec256 or rsa2048", c.KeyType)
	}
	return nil
}

// newHTTPClient is shared by all workers: HTTP/1.1 keep-alive with a
// connection per worker kept idle between requests, which costs less CPU
// on both sides than HTTP/2 framing.
func newHTTPClient(cfg Config) (*http.Client, error) {
	tc := &tls.Config{InsecureSkipVerify: cfg.Insecure}
	if len(cfg.RootPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.RootPEM) {
			return nil, errors.New("the root file holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	tr := &http.Transport{
		TLSClientConfig:     tc,
		MaxIdleConns:        4 * MaxWorkers,
		MaxIdleConnsPerHost: 4 * MaxWorkers,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// keyPool pre-generates certificate keys so that flows do not spend the
// shared CPU on key generation (an RSA key costs ~100ms).
func keyPool(keyType string, n int) ([]crypto.Signer, error) {
	keys := make([]crypto.Signer, n)
	for i := range keys {
		var err error
		if keyType == "rsa2048" {
			keys[i], err = rsa.GenerateKey(rand.Reader, 2048)
		} else {
			keys[i], err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		if err != nil {
			return nil, fmt.Errorf("generate certificate key: %w", err)
		}
	}
	return keys, nil
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Run registers one account per worker, runs flows until cfg.Duration is
// over or ctx is cancelled, and reports. Flows in flight at the end get
// cfg.Grace to finish. An error means the run could not start (bad
// configuration, server unreachable, registration refused); failed flows
// are in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	hc, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	defer hc.CloseIdleConnections()

	resp := &responder{}
	hsrv, err := serveHTTP01(cfg.HTTP01Listen, resp)
	if err != nil {
		return nil, fmt.Errorf("http-01 listener: %w", err)
	}
	defer hsrv.Close()
	if cfg.DNSListen != "" {
		stop, err := serveDNS(cfg.DNSListen, dnsAnswerer{v6: listensOnV6(cfg.HTTP01Listen)})
		if err != nil {
			return nil, fmt.Errorf("dns listener: %w", err)
		}
		defer stop()
	}

	setupCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	dir, err := fetchDirectory(setupCtx, hc, cfg.Server)
	if err != nil {
		return nil, err
	}
	keys, err := keyPool(cfg.KeyType, min(cfg.Workers, 8))
	if err != nil {
		return nil, err
	}
	stats := &Stats{}
	workers, err := register(setupCtx, cfg, hc, dir, stats, resp, keys)
	if err != nil {
		return nil, err
	}
	stats.Requests.Store(0) // count the flows' requests only

	cpu0, start := cpuTime(), time.Now()
	stopNew, cancelNew := context.WithDeadline(ctx, start.Add(cfg.Duration))
	defer cancelNew()
	hardStop, cancelHard := context.WithDeadline(context.WithoutCancel(ctx), start.Add(cfg.Duration+cfg.Grace))
	defer cancelHard()

	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for stopNew.Err() == nil {
				err := w.flow(hardStop)
				var fe *flowError
				switch {
				case err == nil:
					stats.OK.Add(1)
				case hardStop.Err() != nil:
					stats.Abandoned.Add(1)
				case errors.As(err, &fe):
					stats.AddError(fe.kind, err.Error())
				default:
					stats.AddError("client error", err.Error())
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	progress(cfg, stats, start, done)
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	return buildReport(cfg, stats, elapsed, cpu), nil
}

// register creates every worker's account, in parallel.
func register(ctx context.Context, cfg Config, hc *http.Client, dir *directory, stats *Stats, resp *responder, keys []crypto.Signer) ([]*worker, error) {
	workers := make([]*worker, cfg.Workers)
	errs := make([]error, cfg.Workers)
	var wg sync.WaitGroup
	for i := range workers {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate account key: %w", err)
		}
		var seed [32]byte
		rand.Read(seed[:])
		w := &worker{c: &client{hc: hc, dir: dir, key: key, stats: stats}, stats: stats,
			resp: resp, keys: keys, names: cfg.Names, dom: cfg.Domain,
			rnd: mrand.NewChaCha8(seed), n: i}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.c.register(ctx)
		}()
	}
	wg.Wait()
	failed := 0
	var first error
	for _, err := range errs {
		if err != nil {
			failed++
			first = cmp.Or(first, err)
		}
	}
	if first != nil {
		return nil, fmt.Errorf("register %d of %d accounts failed, first: %w", failed, len(errs), first)
	}
	return workers, nil
}

// progress prints elapsed time, flows, errors and the last second's rate
// every second until done.
func progress(cfg Config, s *Stats, start time.Time, done <-chan struct{}) {
	if cfg.Progress == nil {
		<-done
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last int64
	lastAt := start
	for {
		select {
		case <-done:
			if cfg.ProgressTTY {
				fmt.Fprintln(cfg.Progress)
			}
			return
		case now := <-t.C:
			ok := s.OK.Load()
			rate := float64(ok-last) / now.Sub(lastAt).Seconds()
			last, lastAt = ok, now
			line := fmt.Sprintf("%6.0fs  flows %8d  errors %6d  %8.1f/s",
				now.Sub(start).Seconds(), ok, s.Failed.Load(), rate)
			if cfg.ProgressTTY {
				fmt.Fprint(cfg.Progress, "\r"+line)
			} else {
				fmt.Fprintln(cfg.Progress, line)
			}
		}
	}
}
