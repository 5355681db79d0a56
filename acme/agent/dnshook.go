package agent

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// DNSHook answers dns-01 (RFC 8555 §8.4) through an external command, for
// whatever DNS the operator runs. The contract:
//
//	CMD present FQDN VALUE   create the TXT record FQDN with VALUE
//	CMD cleanup FQDN VALUE   remove that record
//
// FQDN is "_acme-challenge.<name>." (trailing dot, CNAMEs not followed)
// and VALUE the base64url SHA-256 of the key authorization. CMD runs with
// /bin/sh -c, so it may carry arguments of its own; the environment also
// holds CERTMINT_DNS01_DOMAIN=<name>. Exit status 0 means done: "present"
// must return only once the record is served, unless the agent was given
// resolvers to poll. Each call may take up to CallTimeout.
type DNSHook struct {
	Command string
	// CallTimeout bounds one call of the command (default 2m).
	CallTimeout time.Duration
}

// Present implements lego's challenge.Provider.
func (h *DNSHook) Present(domain, _, keyAuth string) error {
	return h.run("present", domain, keyAuth)
}

// CleanUp implements lego's challenge.Provider.
func (h *DNSHook) CleanUp(domain, _, keyAuth string) error {
	return h.run("cleanup", domain, keyAuth)
}

// Timeout implements lego's challenge.ProviderTimeout: how long to wait
// for propagation and how often to look.
func (h *DNSHook) Timeout() (timeout, interval time.Duration) {
	return 2 * time.Minute, 500 * time.Millisecond
}

// DNS01Record is the TXT record name and value for a domain and key
// authorization.
func DNS01Record(domain, keyAuth string) (fqdn, value string) {
	sum := sha256.Sum256([]byte(keyAuth))
	return "_acme-challenge." + strings.TrimSuffix(domain, ".") + ".", base64.RawURLEncoding.EncodeToString(sum[:])
}

func (h *DNSHook) run(action, domain, keyAuth string) error {
	fqdn, value := DNS01Record(domain, keyAuth)
	timeout := h.CallTimeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", h.Command+` "$@"`, "sh", action, fqdn, value)
	cmd.Env = append(os.Environ(), "CERTMINT_DNS01_DOMAIN="+domain)
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return fmt.Errorf("dns-01 hook %s %s: %w: %s", action, fqdn, err, msg)
	}
	return nil
}
