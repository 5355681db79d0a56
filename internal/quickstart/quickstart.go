// Package quickstart words the commands that get a first certificate from
// this very server with certbot and lego. The dashboard's "Connect a
// client" card and the server's startup line print them, and a test runs
// them as printed, so they cannot drift from what works.
//
// What makes them work on a default server with nothing else set up:
//   - the directory URL is the server's real scheme, host and port (a
//     wildcard listener is named by a host its certificate covers);
//   - the names are under localhost, which validation resolves to
//     loopback (RFC 6761 §6.3), so they validate on the same machine;
//   - each client answers http-01 on the port the server validates on
//     (--http01-port, 80 by default) and trusts the root in the way it
//     reads one (certbot through Python requests: REQUESTS_CA_BUNDLE;
//     lego: LEGO_CA_CERTIFICATES);
//   - the flags that would otherwise prompt (terms, e-mail) are given.
package quickstart

import (
	"strconv"
	"strings"
)

// Server is what the commands need to know about the running server.
type Server struct {
	DirectoryURL string // e.g. https://localhost:8443/acme/directory
	RootFile     string // absolute path of the root to trust (DATA/ca/root.pem)
	HTTP01Port   int    // the port http-01 validation connects to
}

// Names the examples ask for: under localhost, so that validation reaches
// the client on this machine.
const (
	CertbotName = "app.localhost"
	LegoName    = "api.localhost"
)

// Command is one client's first-certificate command.
type Command struct {
	Client string // "certbot" or "lego"
	Line   string // one shell line, to copy as it is
	Saves  string // where the client puts the certificate
	// AsRoot says the command needs root: certbot keeps its state in
	// /etc/letsencrypt, and ports below 1024 are privileged.
	AsRoot bool
}

// Commands are the certbot and lego commands for s.
func Commands(s Server) []Command {
	port := strconv.Itoa(s.HTTP01Port)
	privileged := s.HTTP01Port < 1024
	return []Command{
		{
			Client: "certbot",
			Line: "REQUESTS_CA_BUNDLE=" + shellQuote(s.RootFile) + " certbot certonly --server " + shellQuote(s.DirectoryURL) +
				" --standalone --http-01-port " + port + " -d " + CertbotName + " --agree-tos --register-unsafely-without-email",
			Saves:  "/etc/letsencrypt/live/" + CertbotName + "/",
			AsRoot: true,
		},
		{
			Client: "lego",
			Line: "LEGO_CA_CERTIFICATES=" + shellQuote(s.RootFile) + " lego --server " + shellQuote(s.DirectoryURL) +
				" --accept-tos --http --http.port :" + port + " -d " + LegoName + " run",
			Saves:  "./.lego/certificates/" + LegoName + ".crt",
			AsRoot: privileged,
		},
	}
}

// RootCommand prints the root of the server whose data directory is
// dataDir into root.pem, quoted for a shell like the other commands.
func RootCommand(dataDir string) string {
	return "certmint ca root --data " + shellQuote(dataDir) + " > root.pem"
}

// shellQuote leaves a word as it is when a POSIX shell would, and puts it
// in single quotes otherwise (a data directory with a space in its path).
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
