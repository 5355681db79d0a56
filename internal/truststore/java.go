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
}

var _ Store = (*JavaStore)(nil)

// Name implements Store.
func (s *JavaStore) Name() string { return "java " + s.Keystore }

func (s *JavaStore) keytool(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	// English output whatever the locale: Installed parses it.
	args = append([]string{"-J-Duser.language=en"}, args...)
	args = append(args, "-keystore", s.Keystore, "-storepass:env", storepassEnv)
	return s.run(ctx, []string{storepassEnv + "=" + s.Password}, stdin, s.Keytool, args...)
}

// Installed implements Store: the entries whose alias is certmint's.
func (s *JavaStore) Installed(ctx context.Context) (map[string]*x509.Certificate, error) {
	out, err := s.keytool(ctx, nil, "-list", "-rfc")
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.Keystore, err)
	}
	return parseKeytoolList(out), nil
}

// parseKeytoolList reads `keytool -list -rfc`: each entry starts with
// "Alias name: X" and holds its certificate as PEM.
func parseKeytoolList(out []byte) map[string]*x509.Certificate {
	found := map[string]*x509.Certificate{}
	for _, chunk := range strings.Split(string(out), "Alias name: ")[1:] {
		alias, rest, _ := strings.Cut(chunk, "\n")
		fp := fingerprintOf(strings.TrimSpace(alias))
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
	return found
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
	for _, fp := range remove {
		if _, err := s.keytool(ctx, nil, "-delete", "-alias", EntryName(fp)); err != nil {
			return fmt.Errorf("delete from %s: %w", s.Keystore, err)
		}
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
