package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/certmint/certmint/web"
)

// consoleSettings lists the effective serve options for /settings (issue
// 20), grouped as an operator reads them, each with where its value came
// from. The database password, the CA passphrase and the OIDC client
// secret are never shown.
func (a *app) consoleSettings() []web.Setting {
	o := a.opts
	var out []web.Setting
	add := func(flag, value string) {
		if value == "" {
			value = "(none)"
		}
		out = append(out, web.Setting{Name: flag, Value: value, Source: o.Sources[flag]})
	}
	list := func(v []string, empty string) string {
		if len(v) == 0 {
			return empty
		}
		return strings.Join(v, ", ")
	}

	// Identifier policy and lifetimes.
	add("allow-domain", list(o.AllowDomains, "(any)"))
	add("deny-domain", list(o.DenyDomains, "(none)"))
	add("allow-ip", list(o.AllowIPs, "(any)"))
	add("deny-ip", list(o.DenyIPs, "(none)"))
	add("no-wildcards", strconv.FormatBool(o.NoWildcards))
	maxValidity := "(the profiles' own)"
	if o.MaxValidity > 0 {
		maxValidity = o.MaxValidity.String()
	}
	add("max-validity", maxValidity)
	profiles := make([]string, 0, len(o.Profiles))
	for name, p := range o.Profiles {
		profiles = append(profiles, fmt.Sprintf("%s=%s", name, p.Validity))
	}
	add("profile", strings.Join(sortedStrings(profiles), ", "))
	add("default-profile", o.DefaultProf)
	add("eab-required", strconv.FormatBool(o.EABRequired))
	trustDomain := o.TrustDomainName
	if trustDomain == "" {
		trustDomain = "(none: no workload identities)"
	}
	add("trust-domain", trustDomain)
	add("tos-url", o.TOS)
	add("reuse-authz", strconv.FormatBool(o.ReuseAuthz))

	// Rate limits.
	add("rate-limits", strconv.FormatBool(o.RateLimitsOn))
	for _, flag := range sortedStrings(mapKeys(o.RateSpecs)) {
		add(flag, *o.RateSpecs[flag])
	}

	// Validation.
	add("http01-port", strconv.Itoa(o.HTTP01Port))
	add("tlsalpn01-port", strconv.Itoa(o.TLSALPN01Port))
	resolver := o.DNSResolver
	if resolver == "" {
		resolver = "(system: /etc/hosts, then /etc/resolv.conf)"
	}
	add("dns-resolver", resolver)
	add("validation-hosts", o.ValidationHosts)
	add("dns-persist-issuer", list(o.PersistIssuer, "(none: dns-persist-01 off)"))

	// Revocation.
	add("crl-url", o.CRLURL)
	add("crl-listen", o.CRLListen)

	// Listeners, database, console sign-in.
	add("listen", o.Listen)
	add("admin-listen", o.AdminListen)
	add("metrics-listen", o.MetricsListen)
	add("hostname", strings.Join(o.Hostnames, ", "))
	add("data", o.Data)
	db := o.DB
	if db == "" {
		db = "sqlite: " + filepath.Join(o.Data, "certmint.db")
	}
	add("db", redactDSN(db))
	add("ca-name", o.RootName)
	add("log-level", o.LogLevel)
	add("local-login", strconv.FormatBool(o.Console.LocalLogin))
	add("oidc-issuer", o.Console.OIDCIssuer)
	if o.Console.OIDCIssuer != "" {
		add("oidc-client-id", o.Console.OIDCClientID)
		secret := "(none)"
		if o.Console.OIDCSecretFile != "" {
			secret = o.Console.OIDCSecretFile + " (contents hidden)"
		}
		add("oidc-client-secret-file", secret)
		add("oidc-groups-claim", o.Console.OIDCGroupsClaim)
		add("oidc-role-map", strings.Join(o.Console.OIDCRoleMap, ", "))
	}

	passphrase := "not set (CA keys not encrypted)"
	if len(o.Passphrase) > 0 || a.ca.KeysEncrypted() {
		passphrase = "set (hidden)"
	}
	source := sourceDefault
	if len(o.Passphrase) > 0 {
		source = sourceEnv
	}
	out = append(out, web.Setting{Name: "CERTMINT_CA_PASSPHRASE", Value: passphrase, Source: source})
	// Where each CA key is: a file, "PKCS#11 token X, object Y", offline.
	for _, iss := range a.ca.Issuers() {
		out = append(out, web.Setting{Name: "CA key (" + string(iss.Role) + ")", Value: iss.KeyLocation})
	}
	return out
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
