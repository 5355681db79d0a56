//go:build !cgo

package kms

import "crypto"

// Available reports whether this build can talk to PKCS#11 modules.
const Available = false

// Token stands in for the cgo build's token; every operation fails with
// ErrNoPKCS11.
type Token struct{}

// Open fails: PKCS#11 modules are C libraries, and this build has no cgo.
func Open(*URI) (*Token, error) { return nil, ErrNoPKCS11 }

// Find fails with ErrNoPKCS11.
func (*Token) Find(string) (crypto.Signer, error) { return nil, ErrNoPKCS11 }

// Generate fails with ErrNoPKCS11.
func (*Token) Generate(string) (crypto.Signer, error) { return nil, ErrNoPKCS11 }

// Delete fails with ErrNoPKCS11.
func (*Token) Delete(string) error { return ErrNoPKCS11 }

// Close does nothing.
func (*Token) Close() error { return nil }
