package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certmint/certmint/internal/atomicfile"
)

// Files of the server's own TLS identity.
const (
	ServerCertFile = "server.pem" // leaf followed by the intermediate
	ServerKeyFile  = "server.key" // PKCS#8, plaintext, mode 0600
)

// serverValidity is short because the certificate renews itself; a leaked
// key is useful for at most a month.
const serverValidity = 30 * 24 * time.Hour

// ServerProfile is the profile of the server's own certificate: serverAuth
// only, since the server never authenticates as a TLS client with it.
func ServerProfile() Profile {
	return Profile{
		Name:        "certmint-server",
		Description: "certmint's own HTTPS certificate",
		Validity:    serverValidity,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

// ServerIdentity is the server's TLS certificate, issued by the CA itself
// and renewed in place. It is safe for concurrent use; hand GetCertificate
// to tls.Config so renewals need no restart.
type ServerIdentity struct {
	ca         *CA
	dir        string
	dnsNames   []string // normalised, sorted
	ips        []net.IP // sorted by string form
	cur        atomic.Pointer[tls.Certificate]
	mu         sync.Mutex // serialises renewals
	checkEvery time.Duration
}

// ServerIdentity loads server.pem and server.key from dir, or issues a new
// certificate when they are missing, unreadable, for other names than
// hostnames, not issued by this CA's intermediate, or within the last third
// of their lifetime. hostnames are DNS names or IP literals.
func (c *CA) ServerIdentity(dir string, hostnames []string) (*ServerIdentity, error) {
	dns, ips, err := splitHostnames(hostnames)
	if err != nil {
		return nil, fmt.Errorf("ca: server identity: %w", err)
	}
	if err := checkNames(c.snap(), dns, ips, nil); err != nil {
		return nil, fmt.Errorf("ca: server identity: %w; give --hostname names the CA may certify", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ca: server identity: %w", err)
	}
	s := &ServerIdentity{ca: c, dir: dir, dnsNames: dns, ips: ips, checkEvery: time.Minute}
	cert, err := s.load()
	switch {
	case err != nil:
		if !errors.Is(err, os.ErrNotExist) {
			c.log.Warn("re-issuing server certificate", "dir", dir, "reason", err.Error())
		}
	case needsRenewal(cert.Leaf, c.now()):
		c.log.Info("re-issuing server certificate", "dir", dir, "reason", "due for renewal",
			"not_after", cert.Leaf.NotAfter)
		cert = nil
	}
	if err != nil || cert == nil {
		if cert, err = s.issue(); err != nil {
			return nil, fmt.Errorf("ca: server identity: %w", err)
		}
	}
	s.cur.Store(cert)
	return s, nil
}

// GetCertificate returns the current certificate; it suits
// tls.Config.GetCertificate.
func (s *ServerIdentity) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load(), nil
}

// Leaf returns the current leaf certificate.
func (s *ServerIdentity) Leaf() *x509.Certificate { return s.cur.Load().Leaf }

// Run checks every minute whether the certificate is due for renewal and
// renews it, until ctx is done. A failed renewal is logged and retried on
// the next check; the current certificate stays in service meanwhile.
func (s *ServerIdentity) Run(ctx context.Context) {
	t := time.NewTicker(s.checkEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.RenewIfNeeded(s.ca.now()); err != nil {
				s.ca.log.Error("server certificate renewal failed", "dir", s.dir, "err", err)
			}
		}
	}
}

// RenewIfNeeded issues and installs a new certificate when now is within
// the last third of the current one's lifetime, and reports whether it did.
func (s *ServerIdentity) RenewIfNeeded(now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load().Leaf
	if !needsRenewal(old, now) {
		return false, nil
	}
	cert, err := s.issue()
	if err != nil {
		return false, fmt.Errorf("ca: renew server certificate: %w", err)
	}
	s.cur.Store(cert)
	s.ca.log.Info("renewed server certificate", "dir", s.dir,
		"old_serial", fmt.Sprintf("%x", old.SerialNumber),
		"serial", fmt.Sprintf("%x", cert.Leaf.SerialNumber), "not_after", cert.Leaf.NotAfter)
	return true, nil
}

// needsRenewal is true from two thirds of the lifetime on.
func needsRenewal(leaf *x509.Certificate, now time.Time) bool {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return !now.Before(leaf.NotAfter.Add(-life / 3))
}

// load reads the files and checks they are usable for this identity.
func (s *ServerIdentity) load() (*tls.Certificate, error) {
	certPath := filepath.Join(s.dir, ServerCertFile)
	keyPath := filepath.Join(s.dir, ServerKeyFile)
	if _, err := os.Stat(certPath); err != nil {
		return nil, err
	}
	if err := checkKeyMode(keyPath); err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, err
	}
	cert.Leaf = leaf
	if err := leaf.CheckSignatureFrom(s.ca.Intermediate()); err != nil {
		return nil, fmt.Errorf("%s is not issued by the current intermediate", certPath)
	}
	dns, ips, err := splitHostnames(append(slices.Clone(leaf.DNSNames), ipStrings(leaf.IPAddresses)...))
	if err != nil || !slices.Equal(dns, s.dnsNames) || !slices.Equal(ipStrings(ips), ipStrings(s.ips)) {
		return nil, fmt.Errorf("%s names differ from the configured hostnames", certPath)
	}
	// Serve the current intermediate whatever chain the file had.
	cert.Certificate = [][]byte{leaf.Raw, s.ca.Intermediate().Raw}
	return &cert, nil
}

// issue creates a new key and certificate, writes them and returns them.
func (s *ServerIdentity) issue() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := NewSerial()
	if err != nil {
		return nil, err
	}
	t := Template{
		PublicKey:   key.Public(),
		DNSNames:    s.dnsNames,
		IPAddresses: s.ips,
		Profile:     ServerProfile(),
		Serial:      serial,
	}
	if len(s.dnsNames) > 0 {
		t.CommonName = s.dnsNames[0]
	}
	der, err := s.ca.Issue(t)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key, nil)
	if err != nil {
		return nil, err
	}
	// Key first: a crash in between leaves a key/cert mismatch, which the
	// next start detects and repairs by re-issuing.
	if err := atomicfile.Write(filepath.Join(s.dir, ServerKeyFile), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(s.dir, ServerCertFile), s.ca.ChainPEM(der), 0o644); err != nil {
		return nil, err
	}
	return &tls.Certificate{
		Certificate: [][]byte{der, s.ca.Intermediate().Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

// splitHostnames normalises hostnames into sorted, de-duplicated DNS names
// (lower case, no trailing dot) and IP addresses.
func splitHostnames(hostnames []string) ([]string, []net.IP, error) {
	var dns []string
	var ips []net.IP
	for _, h := range hostnames {
		h = strings.TrimSpace(h)
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			ips = append(ips, ip)
			continue
		}
		h = strings.TrimSuffix(strings.ToLower(h), ".")
		if strings.ContainsAny(h, " /:@") {
			return nil, nil, fmt.Errorf("invalid hostname %q", h)
		}
		dns = append(dns, h)
	}
	if len(dns) == 0 && len(ips) == 0 {
		return nil, nil, errors.New("no hostnames given")
	}
	slices.Sort(dns)
	dns = slices.Compact(dns)
	slices.SortFunc(ips, func(a, b net.IP) int { return strings.Compare(a.String(), b.String()) })
	ips = slices.CompactFunc(ips, net.IP.Equal)
	return dns, ips, nil
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
