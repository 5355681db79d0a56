package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/certmint/certmint/internal/atomicfile"
	"github.com/certmint/certmint/internal/truststore"
)

// fileTrusted lists, one fingerprint a line, the roots this agent put in
// the machine's trust stores: the ones it may take out again when they
// leave the server's bundle. A root installed by hand stays.
const fileTrusted = "trusted-roots.txt"

// SyncTrust installs every root of the server's bundle into stores and
// removes the roots an earlier SyncTrust installed that have left the
// bundle, so a root rotation reaches the machine's trust with no one
// touching it. The bundle is fetched over TLS verified against the
// agent's root. A store that fails is reported in its Result; the error
// is for the bundle or the agent's state.
func (a *Agent) SyncTrust(ctx context.Context, stores []truststore.Store) ([]truststore.Result, error) {
	bundle, err := truststore.Fetch(ctx, a.cfg.DirectoryURL, a.Roots())
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	path := filepath.Join(a.cfg.StateDir, fileTrusted)
	var managed []string
	if data, err := os.ReadFile(path); err == nil {
		managed = strings.Fields(string(data))
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("trust: read %s: %w", path, err)
	}
	results := truststore.Sync(ctx, stores, bundle, managed)

	// Remember the bundle's roots; while a store failed, keep the old
	// ones too, so their removal is tried again on the next run.
	keep := map[string]bool{}
	for _, c := range bundle {
		keep[truststore.Fingerprint(c)] = true
	}
	for _, r := range results {
		if r.Err != nil {
			for _, fp := range managed {
				keep[fp] = true
			}
		}
	}
	fps := make([]string, 0, len(keep))
	for fp := range keep {
		fps = append(fps, fp)
	}
	sort.Strings(fps)
	if err := atomicfile.Write(path, []byte(strings.Join(fps, "\n")+"\n"), 0o644); err != nil {
		return results, fmt.Errorf("trust: write %s: %w", path, err)
	}
	return results, nil
}

// KeepTrust runs SyncTrust every interval until ctx ends, handing each
// outcome to report.
func (a *Agent) KeepTrust(ctx context.Context, every time.Duration, stores []truststore.Store,
	report func([]truststore.Result, error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			report(a.SyncTrust(ctx, stores))
		}
	}
}
