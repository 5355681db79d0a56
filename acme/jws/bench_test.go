package jws

import "testing"

// BenchmarkParseVerifyES256 measures the per-request cost for the most
// common account key: a kid-signed ES256 POST.
func BenchmarkParseVerifyES256(b *testing.B) {
	k := keysOnce()
	body, err := Sign(k.p256, ES256, Header{Nonce: "ZmFrZS1ub25jZS0xMjM0NTY3ODkw", URL: testURL, KID: "https://ca.example/acme/acct/12345"},
		[]byte(`{"identifiers":[{"type":"dns","value":"www.example.com"}]}`))
	if err != nil {
		b.Fatal(err)
	}
	pub := k.p256.Public()
	opts := ParseOptions{RequireNonce: true}
	b.ReportAllocs()
	for b.Loop() {
		m, err := Parse(body, opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Verify(pub); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse isolates the parse from the signature check.
func BenchmarkParse(b *testing.B) {
	k := keysOnce()
	body, _ := Sign(k.p256, ES256, Header{Nonce: "ZmFrZS1ub25jZS0xMjM0NTY3ODkw", URL: testURL, KID: "https://ca.example/acme/acct/12345"}, []byte(`{}`))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(body, ParseOptions{RequireNonce: true}); err != nil {
			b.Fatal(err)
		}
	}
}
