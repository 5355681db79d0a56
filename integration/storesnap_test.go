package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// fileState is one path of a snapshot: a directory, a symlink and its
// target, or a regular file and its bytes.
type fileState struct {
	mode   fs.FileMode
	target string
	data   []byte
}

func (f fileState) equal(g fileState) bool {
	return f.mode == g.mode && f.target == g.target && bytes.Equal(f.data, g.data)
}

// treeSnapshot is every path under some roots (symlinks not followed).
type treeSnapshot map[string]fileState

// snapshotTrees reads every path under roots; a root that does not exist
// is recorded as absent, so restoring removes it if it appears.
func snapshotTrees(t testing.TB, roots ...string) treeSnapshot {
	t.Helper()
	snap := treeSnapshot{}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := os.Lstat(p)
			if err != nil {
				return err
			}
			st := fileState{mode: info.Mode()}
			switch {
			case info.Mode()&fs.ModeSymlink != 0:
				st.target, err = os.Readlink(p)
			case info.Mode().IsRegular():
				st.data, err = os.ReadFile(p)
			}
			snap[p] = st
			return err
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("snapshot %s: %v", root, err)
		}
	}
	return snap
}

// diff lists the paths that differ between two snapshots.
func (before treeSnapshot) diff(after treeSnapshot) []string {
	var out []string
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			out = append(out, "removed "+p)
		case !a.equal(b):
			out = append(out, "changed "+p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			out = append(out, "added "+p)
		}
	}
	sort.Strings(out)
	return out
}

// restore puts every path under roots back as it was in the snapshot:
// what appeared is removed, what changed or went is written back.
func (before treeSnapshot) restore(t testing.TB, roots ...string) {
	t.Helper()
	now := snapshotTrees(t, roots...)
	var extra []string
	for p := range now {
		if _, ok := before[p]; !ok {
			extra = append(extra, p)
		}
	}
	// Deepest first, so a directory is empty when its turn comes.
	sort.Sort(sort.Reverse(sort.StringSlice(extra)))
	for _, p := range extra {
		if err := os.Remove(p); err != nil {
			t.Errorf("restore: remove %s: %v", p, err)
		}
	}
	var paths []string
	for p := range before {
		paths = append(paths, p)
	}
	sort.Strings(paths) // parents before children
	for _, p := range paths {
		b := before[p]
		if a, ok := now[p]; ok && a.equal(b) {
			continue
		}
		if err := writeState(p, b); err != nil {
			t.Errorf("restore %s: %v", p, err)
		}
	}
}

func writeState(p string, st fileState) error {
	switch {
	case st.mode.IsDir():
		if err := os.MkdirAll(p, st.mode.Perm()); err != nil {
			return err
		}
		return os.Chmod(p, st.mode.Perm())
	case st.mode&fs.ModeSymlink != 0:
		_ = os.Remove(p)
		return os.Symlink(st.target, p)
	case st.mode.IsRegular():
		if fi, err := os.Lstat(p); err == nil && !fi.Mode().IsRegular() {
			_ = os.Remove(p) // a symlink now: do not write through it
		}
		if err := os.WriteFile(p, st.data, st.mode.Perm()); err != nil {
			return err
		}
		return os.Chmod(p, st.mode.Perm())
	}
	return fmt.Errorf("cannot restore a %s", st.mode.Type())
}
