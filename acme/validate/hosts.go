package validate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// systemHostsFile is the host's own static name table. glibc consults it
// before DNS ("hosts: files dns" in nsswitch.conf), so validation without
// --dns-resolver does the same: a name that the operator's machine
// resolves, validation resolves alike.
const systemHostsFile = "/etc/hosts"

// hostsFile is a hosts(5) table, re-read when its modification time or size
// changes, so an operator editing it needs no restart.
type hostsFile struct {
	path   string
	strict bool // a bad line is an error (--validation-hosts), not skipped (/etc/hosts)

	mu      sync.Mutex
	modTime time.Time
	size    int64
	addrs   map[string][]netip.Addr
	err     error
}

func newHostsFile(path string, strict bool) *hostsFile {
	return &hostsFile{path: path, strict: strict}
}

// lookup returns the addresses the table gives host (lowercase, with or
// without the trailing dot) and whether it lists host at all. A table that
// cannot be read lists nothing; for a strict table the error is returned.
func (h *hostsFile) lookup(host string) (v4, v6 []netip.Addr, found bool, err error) {
	table, err := h.load()
	if err != nil {
		if h.strict {
			return nil, nil, false, err
		}
		return nil, nil, false, nil
	}
	addrs, ok := table[strings.TrimSuffix(strings.ToLower(host), ".")]
	if !ok {
		return nil, nil, false, nil
	}
	for _, a := range addrs {
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	return v4, v6, true, nil
}

func (h *hostsFile) load() (map[string][]netip.Addr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fi, err := os.Stat(h.path)
	if err != nil {
		h.addrs, h.err, h.modTime = nil, fmt.Errorf("hosts file %s: %w", h.path, err), time.Time{}
		return nil, h.err
	}
	if h.addrs != nil && fi.ModTime().Equal(h.modTime) && fi.Size() == h.size {
		return h.addrs, nil
	}
	data, err := os.ReadFile(h.path)
	if err != nil {
		h.err = fmt.Errorf("hosts file %s: %w", h.path, err)
		return nil, h.err
	}
	table, err := parseHosts(data, h.strict)
	if err != nil {
		h.err = fmt.Errorf("hosts file %s: %w", h.path, err)
		return nil, h.err
	}
	h.addrs, h.err, h.modTime, h.size = table, nil, fi.ModTime(), fi.Size()
	return table, nil
}

// parseHosts reads hosts(5) lines: an address, then one or more names;
// "#" starts a comment. In strict mode a line with a bad address or no
// name is an error naming the line; otherwise it is skipped, as glibc does.
func parseHosts(data []byte, strict bool) (map[string][]netip.Addr, error) {
	table := map[string][]netip.Addr{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		addr, err := netip.ParseAddr(fields[0])
		if err == nil && addr.Zone() != "" {
			err = errors.New("zoned addresses are not supported")
		}
		if err != nil || len(fields) < 2 {
			if !strict {
				continue
			}
			if err == nil {
				err = errors.New("an address needs at least one name after it")
			}
			return nil, fmt.Errorf("line %d %q: %v (want ADDRESS NAME...)", n, strings.TrimSpace(line), err)
		}
		for _, name := range fields[1:] {
			name = strings.TrimSuffix(strings.ToLower(name), ".")
			table[name] = append(table[name], addr.Unmap())
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return table, nil
}

// CheckHostsFile reads a --validation-hosts file the way validation will,
// so a missing or malformed file stops start-up instead of failing every
// validation later.
func CheckHostsFile(path string) error {
	_, err := newHostsFile(path, true).load()
	return err
}
