package integration

import (
	"testing"
)

func TestLegoHTTP01Smoke(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	leaf, _ := obtainWithLego(t, s, "svc.test")
	if leaf.DNSNames[0] != "svc.test" {
		t.Fatalf("names %v", leaf.DNSNames)
	}
}
