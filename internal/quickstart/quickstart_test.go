package quickstart

import (
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	s := Server{DirectoryURL: "https://localhost:8443/acme/directory", RootFile: "/srv/certmint-data/ca/root.pem", HTTP01Port: 80}
	cmds := Commands(s)
	if len(cmds) != 2 || cmds[0].Client != "certbot" || cmds[1].Client != "lego" {
		t.Fatalf("commands %+v", cmds)
	}
	want := map[string]string{
		"certbot": "REQUESTS_CA_BUNDLE=/srv/certmint-data/ca/root.pem certbot certonly --server https://localhost:8443/acme/directory --standalone --http-01-port 80 -d app.localhost --agree-tos --register-unsafely-without-email",
		"lego":    "LEGO_CA_CERTIFICATES=/srv/certmint-data/ca/root.pem lego --server https://localhost:8443/acme/directory --accept-tos --http --http.port :80 -d api.localhost run",
	}
	for _, c := range cmds {
		if c.Line != want[c.Client] {
			t.Errorf("%s:\n got %s\nwant %s", c.Client, c.Line, want[c.Client])
		}
		if !c.AsRoot {
			t.Errorf("%s on port 80 does not say it needs root", c.Client)
		}
	}
	// Above 1023, lego needs no root; certbot still keeps /etc/letsencrypt.
	s.HTTP01Port = 5002
	cmds = Commands(s)
	if !cmds[0].AsRoot || cmds[1].AsRoot || !strings.Contains(cmds[1].Line, "--http.port :5002") || !strings.Contains(cmds[0].Line, "--http-01-port 5002") {
		t.Errorf("port 5002: %+v", cmds)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/srv/ca/root.pem":         "/srv/ca/root.pem",
		"/home/a b/root.pem":       "'/home/a b/root.pem'",
		"/it's/root.pem":           `'/it'\''s/root.pem'`,
		"https://h:1/acme/dir?x=1": "'https://h:1/acme/dir?x=1'",
		"":                         "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestRootCommand: the dashboard's hint survives a data directory with a
// space or a quote in its path.
func TestRootCommand(t *testing.T) {
	for dir, want := range map[string]string{
		"/var/lib/certmint-data":   "certmint ca root --data /var/lib/certmint-data > root.pem",
		"/home/ann/my data":        `certmint ca root --data '/home/ann/my data' > root.pem`,
		"/srv/ann's/certmint-data": `certmint ca root --data '/srv/ann'\''s/certmint-data' > root.pem`,
	} {
		if got := RootCommand(dir); got != want {
			t.Errorf("RootCommand(%q) = %s, want %s", dir, got, want)
		}
	}
}
