package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
)

// ServerTLSConfig serves current() on every handshake, so a renewal is in
// use from the next one, and requires a client certificate that chains to
// roots: the receiving side of mutual TLS. current returns nil before the
// first certificate. Services that read an agent's files use it as well
// as the embedded agent does.
func ServerTLSConfig(current func() *tls.Certificate, roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := current(); c != nil {
				return c, nil
			}
			return nil, errors.New("agent has no certificate yet")
		},
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  roots,
	}
}

// ClientTLSConfig presents current() when a server asks for a client
// certificate and trusts only roots: the calling side of mutual TLS.
func ClientTLSConfig(current func() *tls.Certificate, roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c := current(); c != nil {
				return c, nil
			}
			return &tls.Certificate{}, nil // no certificate: the server decides
		},
		RootCAs: roots,
	}
}
