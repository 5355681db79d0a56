package truststore

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
)

// DefaultJavaPassword is the password of every JDK's cacerts unless the
// distribution was told otherwise.
const DefaultJavaPassword = "changeit"

// storepassEnv carries the keystore password to keytool through its
// environment (-storepass:env), so it never shows in ps.
const storepassEnv = "CERTMINT_KEYTOOL_STOREPASS"

// JavaStore is one JDK's cacerts, changed through that JDK's keytool.
// Several JDKs often share one file (Debian links them all to
// /etc/ssl/certs/java/cacerts); discovery keeps one store per file.
type JavaStore struct {
	Keystore string // the cacerts file (symlinks resolved)
	Keytool  string // the keytool to run
	Password string
	run      runner

	// viaSystem holds the roots Installed found under the alias Debian's
	// ca-certificates-java gives a root of the system store
	// ("debian:certmint-<fp>.pem"): trusted already, and not keytool's to
	// remove.
	viaSystem map[string]bool
}

// debianAlias is the alias ca-certificates-java gives the system store's
// file certmint-<fp>.crt (linked as /etc/ssl/certs/certmint-<fp>.pem).
func debianAlias(fp string) string { return "debian:" + EntryName(fp) + ".pem" }

var _ Store = (*JavaStore)(nil)

// Name implements Store.
func (s *JavaStore) Name() string { return "java " + s.Keystore }

func (s *JavaStore) keytool(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	// English output whatever the locale: Installed parses it.
	args = append([]string{"-J-Duser.language=en"}, args...)
	args = append(args, "-keystore", s.Keystore, "-storepass:env", storepassEnv)
	return s.run(ctx, []string{storepassEnv + "=" + s.Password}, stdin, s.Keytool, args...)
}

// Installed implements Store: the entries whose alias is certmint's, and
// on Debian those its system store put there through ca-certificates-java
// (so the same root is not added twice to one file).
func (s *JavaStore) Installed(ctx context.Context) (map[string]*x509.Certificate, error) {
	out, err := s.keytool(ctx, nil, "-list", "-rfc")
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.Keystore, err)
	}
	ours, system := parseKeytoolList(out)
	s.viaSystem = map[string]bool{}
	for fp, c := range system {
		if ours[fp] == nil {
			ours[fp] = c
			s.viaSystem[fp] = true
		}
	}
	return ours, nil
}

// parseKeytoolList reads `keytool -list -rfc`: each entry starts with
// "Alias name: X" and holds its certificate as PEM. It returns certmint's
// own entries and those of the system store (debianAlias), each checked
// against the fingerprint its alias carries.
func parseKeytoolList(out []byte) (ours, system map[string]*x509.Certificate) {
	ours, system = map[string]*x509.Certificate{}, map[string]*x509.Certificate{}
	for _, chunk := range strings.Split(string(out), "Alias name: ")[1:] {
		alias, rest, _ := strings.Cut(chunk, "\n")
		alias = strings.ToLower(strings.TrimSpace(alias))
		found := ours
		if a, ok := strings.CutPrefix(alias, "debian:"); ok {
			alias, found = strings.TrimSuffix(a, ".pem"), system
		}
		fp := fingerprintOf(alias)
		if fp == "" {
			continue
		}
		block, _ := pem.Decode([]byte(rest))
		if block == nil {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil || Fingerprint(c) != fp {
			continue
		}
		found[fp] = c
	}
	return ours, system
}

// Update implements Store, one keytool run per root.
func (s *JavaStore) Update(ctx context.Context, add []*x509.Certificate, remove []string) error {
	if err := writable(s.Keystore); err != nil {
		return err
	}
	for _, c := range add {
		if _, err := s.keytool(ctx, encodePEM(c), "-importcert", "-noprompt", "-trustcacerts",
			"-alias", EntryName(Fingerprint(c))); err != nil {
			return fmt.Errorf("import into %s: %w", s.Keystore, err)
		}
	}
	var system []string
	for _, fp := range remove {
		if s.viaSystem[fp] {
			system = append(system, debianAlias(fp))
			continue
		}
		if _, err := s.keytool(ctx, nil, "-delete", "-alias", EntryName(fp)); err != nil {
			return fmt.Errorf("delete from %s: %w", s.Keystore, err)
		}
	}
	if len(system) > 0 {
		return fmt.Errorf("%s trusts the root through the system store (alias %s): uninstall it with --system",
			s.Keystore, strings.Join(system, ", "))
	}
	return nil
}

// javaHomes lists the JDKs to consider: $JAVA_HOME alone when it is set
// (the user chose), else every JDK under jvmDir and the one `java` on PATH
// belongs to.
func javaHomes(env Env) []string {
	if env.JavaHome != "" {
		return []string{env.JavaHome}
	}
	var homes []string
	if dirs, err := filepath.Glob(filepath.Join(env.JVMDir, "*")); err == nil {
		homes = append(homes, dirs...)
	}
	if java, err := env.LookPath("java"); err == nil {
		if real, err := filepath.EvalSymlinks(java); err == nil {
			homes = append(homes, filepath.Dir(filepath.Dir(real)))
		}
	}
	return homes
}

// findJava returns one store per distinct cacerts file of the JDKs found.
func findJava(env Env) []Store {
	var stores []Store
	seen := map[string]bool{}
	for _, home := range javaHomes(env) {
		keytool := filepath.Join(home, "bin", "keytool")
		if !env.exists(keytool) {
			continue
		}
		// lib/security since JDK 9; jre/lib/security in JDK 8.
		for _, rel := range []string{"lib/security/cacerts", "jre/lib/security/cacerts"} {
			ks, err := filepath.EvalSymlinks(filepath.Join(home, rel))
			if err != nil || seen[ks] {
				continue
			}
			seen[ks] = true
			stores = append(stores, &JavaStore{Keystore: ks, Keytool: keytool,
				Password: DefaultJavaPassword, run: env.run()})
			break
		}
	}
	return stores
}
