package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/certmint/certmint/acme/agent"
)

// source is where one side gets its certificate and the root it trusts:
// the embedded agent (*agent.Agent), or the files `certmint agent --out
// DIR` keeps current (*fileSource).
type source interface {
	Current() *tls.Certificate
	ServerTLSConfig() *tls.Config
	ClientTLSConfig() *tls.Config
}

// fileSource serves the certificate in an agent's --out directory and picks
// up a renewal on the next handshake: it compares the files' modification
// times and sizes (a stat per handshake) and reloads when they change.
// fullchain.pem and key.pem are replaced one after the other, so a pair
// that does not match is a renewal half-written: the old pair stays in use
// until the next look.
type fileSource struct {
	dir   string
	roots *x509.CertPool

	mu    sync.Mutex
	stamp string
	cur   *tls.Certificate
}

// openFiles waits up to wait for the agent's first certificate in dir.
func openFiles(dir string, wait time.Duration) (*fileSource, error) {
	deadline := time.Now().Add(wait)
	for {
		f, err := loadFiles(dir)
		if err == nil || time.Now().After(deadline) {
			return f, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func loadFiles(dir string) (*fileSource, error) {
	rootPEM, err := os.ReadFile(filepath.Join(dir, "root.pem"))
	if err != nil {
		return nil, fmt.Errorf("--cert-dir: %w (is certmint agent --out %s running?)", err, dir)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		return nil, fmt.Errorf("--cert-dir: no certificate in %s", filepath.Join(dir, "root.pem"))
	}
	f := &fileSource{dir: dir, roots: roots}
	if f.Current() == nil {
		return nil, errors.New("--cert-dir: no usable fullchain.pem and key.pem in " + dir + " yet")
	}
	return f, nil
}

// Current is the certificate in the files, reloaded when they changed.
func (f *fileSource) Current() *tls.Certificate {
	chain, key := filepath.Join(f.dir, "fullchain.pem"), filepath.Join(f.dir, "key.pem")
	stamp := ""
	for _, p := range []string{chain, key} {
		fi, err := os.Stat(p)
		if err != nil {
			return f.last()
		}
		stamp += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if stamp == f.stamp {
		return f.cur
	}
	c, err := tls.LoadX509KeyPair(chain, key)
	if err != nil {
		return f.cur // half-written renewal: try again on the next handshake
	}
	f.stamp, f.cur = stamp, &c
	return f.cur
}

func (f *fileSource) last() *tls.Certificate {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

// ServerTLSConfig serves the current certificate and requires a client
// certificate that chains to the root, as agent.Agent's does.
func (f *fileSource) ServerTLSConfig() *tls.Config { return agent.ServerTLSConfig(f.Current, f.roots) }

// ClientTLSConfig presents the current certificate and trusts only the
// root, as agent.Agent's does.
func (f *fileSource) ClientTLSConfig() *tls.Config { return agent.ClientTLSConfig(f.Current, f.roots) }
