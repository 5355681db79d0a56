package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
)

// testKeys are generated once per test binary: RSA generation is slow,
// especially under -race.
type testKeys struct {
	rsa2048, rsa1024       *rsa.PrivateKey
	p224, p256, p384, p521 *ecdsa.PrivateKey
	ed                     ed25519.PrivateKey
}

var keysOnce = sync.OnceValue(func() *testKeys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var k testKeys
	var err error
	k.rsa2048, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsa1024, err = rsa.GenerateKey(rand.Reader, 1024)
	must(err)
	for _, c := range []struct {
		dst   **ecdsa.PrivateKey
		curve elliptic.Curve
	}{{&k.p224, elliptic.P224()}, {&k.p256, elliptic.P256()}, {&k.p384, elliptic.P384()}, {&k.p521, elliptic.P521()}} {
		*c.dst, err = ecdsa.GenerateKey(c.curve, rand.Reader)
		must(err)
	}
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return &k
})

const testURL = "https://ca.example/acme/new-order"

// signRaw signs an arbitrary protected header, so tests can build requests
// that Sign refuses to produce.
func signRaw(t testing.TB, key crypto.Signer, alg, header, payload string) []byte {
	t.Helper()
	prot := b64.EncodeToString([]byte(header))
	pay := b64.EncodeToString([]byte(payload))
	sig, err := signInput(key, alg, []byte(prot+"."+pay))
	if err != nil {
		t.Fatalf("signInput: %v", err)
	}
	return flat(prot, pay, b64.EncodeToString(sig))
}

func flat(prot, pay, sig string) []byte {
	return fmt.Appendf(nil, `{"protected":%q,"payload":%q,"signature":%q}`, prot, pay, sig)
}

// jwkJSON returns the canonical JWK of key, panicking on error.
func jwkJSON(key crypto.PublicKey) string {
	j, err := MarshalJWK(key)
	if err != nil {
		panic(err)
	}
	return string(j)
}

// editBody decodes a flattened JWS, lets edit change its members and
// re-encodes it.
func editBody(t testing.TB, body []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
