package ca

import (
	"bytes"
	"crypto/x509"
	"math/big"
	"testing"
	"time"
)

func TestCRL(t *testing.T) {
	clock := newFakeClock()
	c := newTestCA(t, clock)
	now := clock.Now()
	tests := []struct {
		name    string
		entries []x509.RevocationListEntry
		number  int64
	}{
		{name: "ok/empty", number: 1},
		{
			name: "ok/with-reasons",
			entries: []x509.RevocationListEntry{
				{SerialNumber: mustSerial(t), RevocationTime: now.Add(-time.Hour).UTC().Truncate(time.Second), ReasonCode: 1},   // keyCompromise
				{SerialNumber: mustSerial(t), RevocationTime: now.Add(-time.Minute).UTC().Truncate(time.Second), ReasonCode: 4}, // superseded
				{SerialNumber: mustSerial(t), RevocationTime: now.UTC().Truncate(time.Second)},                                  // unspecified: no extension
			},
			number: 42,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := c.CRL(tt.entries, big.NewInt(tt.number), now, now.Add(24*time.Hour))
			if err != nil {
				t.Fatalf("CRL: %v", err)
			}
			crl, err := x509.ParseRevocationList(der)
			if err != nil {
				t.Fatalf("ParseRevocationList: %v", err)
			}
			if err := crl.CheckSignatureFrom(c.Intermediate()); err != nil {
				t.Fatalf("CheckSignatureFrom(intermediate): %v", err)
			}
			if crl.Number.Int64() != tt.number {
				t.Errorf("Number = %v, want %d", crl.Number, tt.number)
			}
			if !bytes.Equal(crl.AuthorityKeyId, c.Intermediate().SubjectKeyId) {
				t.Errorf("AKI != intermediate SKI")
			}
			if !crl.ThisUpdate.Equal(now) || !crl.NextUpdate.Equal(now.Add(24*time.Hour)) {
				t.Errorf("updates = %v, %v", crl.ThisUpdate, crl.NextUpdate)
			}
			if len(crl.RevokedCertificateEntries) != len(tt.entries) {
				t.Fatalf("%d entries, want %d", len(crl.RevokedCertificateEntries), len(tt.entries))
			}
			for i, want := range tt.entries {
				got := crl.RevokedCertificateEntries[i]
				if got.SerialNumber.Cmp(want.SerialNumber) != 0 || got.ReasonCode != want.ReasonCode ||
					!got.RevocationTime.Equal(want.RevocationTime) {
					t.Errorf("entry %d = {%x %v %d}, want {%x %v %d}", i,
						got.SerialNumber, got.RevocationTime, got.ReasonCode,
						want.SerialNumber, want.RevocationTime, want.ReasonCode)
				}
			}
		})
	}
}

func TestCRLRejects(t *testing.T) {
	c := newTestCA(t, newFakeClock())
	now := time.Now()
	tests := []struct {
		name       string
		number     *big.Int
		this, next time.Time
	}{
		{"fail/nil-number", nil, now, now.Add(time.Hour)},
		{"fail/next-before-this", big.NewInt(1), now, now.Add(-time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.CRL(nil, tt.number, tt.this, tt.next); err == nil {
				t.Fatal("CRL succeeded, want error")
			}
		})
	}
}
