package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// A testdata tool is a client command built from a module of its own
// under testdata/ (its go.mod and go.sum pin the version, resolved from
// the Go module proxy): the lego CLI, smallstep's ACME client.
var (
	toolsMu sync.Mutex
	tools   = map[string]*toolBuild{}
)

type toolBuild struct {
	once sync.Once
	path string
	err  string
}

// testdataTool builds package pkg of the module in testdata/<module> once
// per content of that module (go.mod, go.sum and its own .go files), into
// the user cache, so later runs start at once. It fails the test when the
// build fails: a client that cannot be built is a missing component, not
// a reason to skip.
func testdataTool(t *testing.T, module, pkg string) string {
	t.Helper()
	toolsMu.Lock()
	b := tools[module+" "+pkg]
	if b == nil {
		b = &toolBuild{}
		tools[module+" "+pkg] = b
	}
	toolsMu.Unlock()
	b.once.Do(func() { b.path, b.err = buildTool(module, pkg) })
	if b.err != "" {
		t.Fatal(b.err)
	}
	return b.path
}

func buildTool(module, pkg string) (string, string) {
	dir, err := filepath.Abs(filepath.Join("testdata", module))
	if err != nil {
		return "", err.Error()
	}
	sources, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	h := sha256.New()
	h.Write([]byte(pkg))
	for _, f := range append([]string{filepath.Join(dir, "go.mod"), filepath.Join(dir, "go.sum")}, sources...) {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", "read testdata/" + module + ": " + err.Error()
		}
		h.Write([]byte(filepath.Base(f)))
		h.Write(b)
	}
	sum := h.Sum(nil)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Join(cache, "certmint-test", module+"-"+hex.EncodeToString(sum[:8]))
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, ""
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err.Error()
	}
	// Build to a temporary name and rename, so an interrupted build never
	// leaves a half-written binary that later runs would trust. The name
	// is this process's own: two checkouts testing at once each build,
	// and with one shared name the second's rename found nothing.
	tmp := fmt.Sprintf("%s.tmp%d", bin, os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, pkg)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", "build " + pkg + " of testdata/" + module + ": " + err.Error() + "\n" + string(out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err.Error()
	}
	return bin, ""
}
