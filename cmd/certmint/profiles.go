package main

import (
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/certmint/certmint/ca"
)

// parseProfiles turns --profile values of the form NAME=VALIDITY[:USAGES]
// (USAGES: server, client or server+client, the default) into issuance
// profiles. The built-in "default" profile is always offered unless a
// value redefines it.
func parseProfiles(values []string) (map[string]ca.Profile, error) {
	def := ca.DefaultProfile()
	out := map[string]ca.Profile{def.Name: def}
	for _, v := range values {
		name, spec, ok := strings.Cut(v, "=")
		if !ok || name == "" || strings.ContainsAny(name, " ,/") {
			return nil, usagef("--profile %q must be NAME=VALIDITY[:server+client], e.g. short=48h", v)
		}
		validity, usages, _ := strings.Cut(spec, ":")
		d, err := time.ParseDuration(validity)
		if err != nil || d < time.Minute {
			return nil, usagef("--profile %q: validity %q must be a duration of at least 1m, e.g. 48h", v, validity)
		}
		p := ca.Profile{Name: name, Validity: d}
		if usages == "" {
			usages = "server+client"
		}
		for _, u := range strings.Split(usages, "+") {
			switch u {
			case "server":
				p.ExtKeyUsage = append(p.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
			case "client":
				p.ExtKeyUsage = append(p.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
			default:
				return nil, usagef("--profile %q: key usage %q must be server or client", v, u)
			}
		}
		p.Description = fmt.Sprintf("%s certificate for TLS %s", d, strings.ReplaceAll(usages, "+", " and "))
		out[name] = p
	}
	return out, nil
}
