package truststore

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Env is where discovery looks; DefaultEnv is the real machine, tests
// point it at temp dirs.
type Env struct {
	Home     string // the user's home, for NSS databases
	JavaHome string // $JAVA_HOME: when set, the only JDK considered
	JVMDir   string // where distributions install JDKs (/usr/lib/jvm)
	LookPath func(string) (string, error)
	Run      runner // nil: run the real tools
}

// DefaultEnv reads $HOME and $JAVA_HOME and looks for tools on $PATH and
// in /usr/sbin and /sbin (not on a normal user's PATH, yet where the
// system update commands live).
func DefaultEnv() Env {
	home, _ := os.UserHomeDir()
	return Env{Home: home, JavaHome: os.Getenv("JAVA_HOME"), JVMDir: "/usr/lib/jvm", LookPath: lookPath}
}

func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

func (e Env) run() runner {
	if e.Run != nil {
		return e.Run
	}
	return execRunner
}

func (e Env) exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Kinds selects stores; all false means every kind found on the machine.
type Kinds struct{ System, Java, NSS bool }

// Found is the outcome of discovery.
type Found struct {
	Stores []Store
	// Missing holds a kind that was asked for by name and is not there:
	// the command fails for it, as for a store it could not change.
	Missing []error
	// Notes are kinds skipped on a machine that has them only in part
	// (browser databases but no certutil), when none was named.
	Notes []string
}

// ErrNotFound marks a store kind that was asked for and is not there.
var ErrNotFound = errors.New("not found")

// Find discovers the stores of the kinds asked for.
func Find(k Kinds, env Env) Found {
	explicit := k.System || k.Java || k.NSS
	if !explicit {
		k = Kinds{true, true, true}
	}
	var f Found
	missing := func(format string, args ...any) {
		if explicit {
			f.Missing = append(f.Missing, fmt.Errorf("%w: %s", ErrNotFound, fmt.Sprintf(format, args...)))
		}
	}
	if k.System {
		if s := findSystem(env); s != nil {
			f.Stores = append(f.Stores, s)
		} else {
			missing("system: neither update-ca-certificates (Debian, Ubuntu) nor update-ca-trust (RHEL, Fedora) is installed")
		}
	}
	if k.Java {
		if js := findJava(env); len(js) > 0 {
			f.Stores = append(f.Stores, js...)
		} else {
			missing("java: no JDK with keytool and cacerts under %s or on PATH; set JAVA_HOME", env.JVMDir)
		}
	}
	if k.NSS {
		dirs := nssDirs(env)
		certutil, err := env.LookPath("certutil")
		switch {
		case len(dirs) == 0:
			missing("nss: no NSS database in %s/.pki/nssdb or a Firefox profile; start the browser once, or create one with `certutil -N -d sql:%s/.pki/nssdb --empty-password`", env.Home, env.Home)
		case err != nil && explicit:
			missing("nss: certutil is not installed (Debian: libnss3-tools, RHEL: nss-tools)")
		case err != nil:
			f.Notes = append(f.Notes, "nss: skipped, certutil is not installed (Debian: libnss3-tools, RHEL: nss-tools)")
		default:
			for _, d := range dirs {
				f.Stores = append(f.Stores, &NSSStore{Dir: d, Certutil: certutil, run: env.run()})
			}
		}
	}
	return f
}

// findSystem picks the distribution's mechanism by its update command.
func findSystem(env Env) Store {
	for _, fl := range []systemFlavor{debianFlavor, redhatFlavor} {
		if p, err := env.LookPath(fl.update[0]); err == nil {
			fl.update = append([]string{p}, fl.update[1:]...)
			return &SystemStore{flavor: fl, run: env.run()}
		}
	}
	return nil
}
