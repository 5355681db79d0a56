package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// checkReference compares the configuration reference on disk with the
// one the flags produce. It names the flags that are in one and not the
// other, so a renamed flag reads as what it is.
func checkReference(onDisk, generated []byte) error {
	if string(onDisk) == string(generated) {
		return nil
	}
	disk, code := referenceRows(onDisk), referenceRows(generated)
	var msgs []string
	for _, r := range disk {
		if !slices.Contains(code, r) {
			msgs = append(msgs, "documented but not in the code: "+r)
		}
	}
	for _, r := range code {
		if !slices.Contains(disk, r) {
			msgs = append(msgs, "in the code but not documented: "+r)
		}
	}
	if len(msgs) == 0 { // same flags, other words: the first line that differs
		a, b := strings.Split(string(onDisk), "\n"), strings.Split(string(generated), "\n")
		for i := 0; i < len(a) || i < len(b); i++ {
			var x, y string
			if i < len(a) {
				x = a[i]
			}
			if i < len(b) {
				y = b[i]
			}
			if x != y {
				msgs = append(msgs, fmt.Sprintf("line %d is\n\t%s\nwant\n\t%s", i+1, x, y))
				break
			}
		}
	}
	return fmt.Errorf("%s is out of date with the flags:\n%s\nRegenerate it: %s",
		referenceFile, strings.Join(msgs, "\n"), regenerateCommand)
}

// referenceRows lists "certmint serve --listen" for every flag row.
func referenceRows(doc []byte) []string {
	var out []string
	command := ""
	row := regexp.MustCompile("^\\| `(--[a-z0-9-]+)")
	for _, line := range strings.Split(string(doc), "\n") {
		if c, ok := strings.CutPrefix(line, "## "); ok {
			command = c
		} else if m := row.FindStringSubmatch(line); m != nil {
			out = append(out, command+" "+m[1])
		}
	}
	return out
}

// TestConfigurationReference: docs/configuration.md is exactly what the
// flag definitions generate.
func TestConfigurationReference(t *testing.T) {
	onDisk, err := os.ReadFile(filepath.Join("..", "..", referenceFile))
	if err != nil {
		t.Fatalf("%v; generate it: %s", err, regenerateCommand)
	}
	if err := checkReference(onDisk, configReference(newRootCmd())); err != nil {
		t.Fatal(err)
	}
}

// TestConfigurationReferenceCatchesRename shows the check failing: with
// --http01-port of serve renamed in the command tree (the code, as a
// rename would leave it), the file on disk no longer matches, and the
// report names both spellings.
func TestConfigurationReferenceCatchesRename(t *testing.T) {
	onDisk, err := os.ReadFile(filepath.Join("..", "..", referenceFile))
	if err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	serve, _, err := root.Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	f := serve.Flags().Lookup("http01-port")
	if f == nil {
		t.Fatal("serve has no --http01-port to rename")
	}
	f.Name = "http01-validation-port"
	err = checkReference(onDisk, configReference(root))
	if err == nil {
		t.Fatal("the reference check passed with a renamed flag")
	}
	for _, want := range []string{
		"documented but not in the code: certmint serve --http01-port",
		"in the code but not documented: certmint serve --http01-validation-port",
		"make docs",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the report lacks %q:\n%v", want, err)
		}
	}
	// A changed help text, with the same flags, is caught too.
	f.Name = "http01-port"
	f.Usage = "another meaning"
	if err := checkReference(onDisk, configReference(root)); err == nil || !strings.Contains(err.Error(), "another meaning") {
		t.Errorf("a changed help text: %v", err)
	}
}
