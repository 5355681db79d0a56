// Command demo runs the mutual-TLS scenario of the seeds on one machine
// and exits: certmint on loopback with a short profile and a SPIFFE trust
// domain, a `certmint agent` for receiver.demo.test and one for
// sender.demo.test, each registered with an EAB key that binds its
// workload identity, and mtls-demo's receiver and sender on the agents'
// files, the sender calling the receiver every few seconds. The receiver
// accepts only the sender's identity: a third service, batch.demo.test,
// holds a valid certificate of the same CA with another identity, calls
// once and is refused. It prints one line per event (issued, renewed,
// call ok with the peer's name and the serial it saw, the refusal), stops
// once each certificate has renewed -renewals times and calls went on
// succeeding after that, prints a summary, and exits 0, or 1 if a call
// failed, the intruder got through, or the renewals did not come in time.
//
// It needs no DNS set-up (validation reads a --validation-hosts file, the
// sender connects to 127.0.0.1 and checks the receiver's name), no root in
// any system store (each agent pins the root by its fingerprint) and no
// privileged port. `make demo` runs it:
//
//	go run ./scripts/demo -bin bin [-profile 2m] [-renewals 2] [-interval 2s]
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/certmint/certmint/tools/freeport"
)

const (
	receiverName = "receiver.demo.test"
	senderName   = "sender.demo.test"
)

type options struct {
	bin      string
	profile  time.Duration
	renewals int
	interval time.Duration
	timeout  time.Duration
	keep     bool
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory holding the certmint and mtls-demo binaries (make build)")
	flag.DurationVar(&o.profile, "profile", 2*time.Minute, "certificate lifetime (the CA backdates a minute, so 2m leaves about one: renewals every 20-40s)")
	flag.IntVar(&o.renewals, "renewals", 2, "renewals each certificate must go through")
	flag.DurationVar(&o.interval, "interval", 2*time.Second, "time between the sender's calls")
	flag.DurationVar(&o.timeout, "timeout", 4*time.Minute+30*time.Second, "give up (exit 1) after this long")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory with the data, certificates and logs")
	flag.Parse()
	if o.profile < 2*time.Minute || o.renewals < 1 || o.interval <= 0 {
		fmt.Fprintln(os.Stderr, "demo: -profile must be at least 2m (the CA backdates a minute), -renewals at least 1, -interval positive")
		os.Exit(2)
	}
	os.Exit(run(o))
}

// event is one thing a process reported.
type event struct {
	at       time.Duration
	proc     string
	kind     string // obtained, renewed, unchanged, listening, call-ok, call-failed, warning, exited
	service  string
	serial   string
	expires  string
	next     string
	peer     string
	peerSeen string // what the receiver saw of the sender (its serial)
	identity string // the certificate's SPIFFE ID
	reason   string // why a caller was refused
	text     string
}

type demo struct {
	o      options
	dir    string
	start  time.Time
	events chan event
	mu     sync.Mutex
	procs  []*proc
}

func run(o options) int {
	dir, err := os.MkdirTemp("", "certmint-demo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	d := &demo{o: o, dir: dir, start: time.Now(), events: make(chan event, 256)}
	code := d.run()
	d.stopAll()
	if o.keep || code != 0 {
		fmt.Printf("files and logs kept in %s\n", dir)
	} else {
		os.RemoveAll(dir)
	}
	return code
}

func (d *demo) run() int {
	certmint, mtls := filepath.Join(d.o.bin, "certmint"), filepath.Join(d.o.bin, "mtls-demo")
	for _, b := range []string{certmint, mtls} {
		if _, err := os.Stat(b); err != nil {
			fmt.Fprintf(os.Stderr, "demo: %s is missing; run make build (or pass -bin DIR)\n", b)
			return 1
		}
	}
	// certmint binds port 0 and reports where (--ready-file); the agents'
	// challenge ports are told to certmint before an agent binds them, so
	// they are reserved (tools/freeport) rather than found free and lost.
	httpPort, err := freeport.Reserve()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	defer httpPort.Release()
	alpnPort, err := freeport.Reserve()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	defer alpnPort.Release()
	hosts := filepath.Join(d.dir, "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 "+receiverName+" "+senderName+" "+intruderName+"\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	data, ready := filepath.Join(d.dir, "data"), filepath.Join(d.dir, "ready.json")
	fmt.Printf("certmint demo: two services on short-lived certificates, calling each other over mutual TLS\n")

	d.spawn("certmint", certmint, "serve", "--data", data, "--ready-file", ready,
		"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--crl-listen", "127.0.0.1:0",
		"--http01-port", strconv.Itoa(httpPort.N), "--tlsalpn01-port", strconv.Itoa(alpnPort.N),
		"--validation-hosts", hosts, "--profile", "short="+shortDuration(d.o.profile), "--log-level", "warn",
		"--trust-domain", trustDomain)
	server, fp, err := waitServer(ready, 30*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo: certmint did not start:", err)
		return 1
	}
	fmt.Printf("  server  %s, profile short=%s, names for validation from %s\n", server, shortDuration(d.o.profile), hosts)
	fmt.Printf("  root    SHA-256 %s… (each agent pins it; nothing is installed)\n", fp[:16])

	// Each service's EAB key binds its workload identity.
	eab := map[string][]string{}
	for _, svc := range []string{receiverName, senderName, intruderName} {
		if eab[svc], err = d.workloadKey(certmint, data, svc); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			return 1
		}
	}
	common := []string{"agent", "--server", server, "--root-fingerprint", fp, "--profile", "short"}
	// The intruder's certificate first, once, while the ports are free.
	if err := d.obtainOnce(certmint, append(append(common, eab[intruderName]...), "--name", intruderName,
		"--out", filepath.Join(d.dir, "intruder"), "--http01-listen", addr(httpPort.N))); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	// Two challenge types, so simultaneous renewals never want one port.
	d.spawn("agent "+receiverName, certmint, append(append(common, eab[receiverName]...), "--name", receiverName,
		"--out", filepath.Join(d.dir, "receiver"), "--tlsalpn01-listen", addr(alpnPort.N))...)
	d.spawn("agent "+senderName, certmint, append(append(common, eab[senderName]...), "--name", senderName,
		"--out", filepath.Join(d.dir, "sender"), "--http01-listen", addr(httpPort.N))...)

	st := &stats{renewals: map[string]int{}, seenRecv: map[string]bool{}, seenSend: map[string]bool{}}
	deadline := time.After(d.o.timeout)
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt, syscall.SIGTERM)
	started := false
	var recvURL, recvAddr string // where the receiver listens, once it says so
	callsAfter := 0              // successful calls since both reached the renewals wanted
	for {
		var e event
		select {
		case e = <-d.events:
		case <-interrupt:
			fmt.Println("demo: interrupted")
			st.print(d)
			return 1
		case <-deadline:
			fmt.Printf("demo: gave up after %s: %s renewed %d times, %s %d times (want %d each)\n", d.o.timeout,
				receiverName, st.renewals[receiverName], senderName, st.renewals[senderName], d.o.renewals)
			st.print(d)
			return 1
		}
		d.print(e)
		switch e.kind {
		case "exited":
			fmt.Printf("demo: %s stopped unexpectedly; the end of its log:\n%s", e.proc, d.tail(e.proc))
			st.print(d)
			return 1
		case "obtained":
			st.issued++
		case "renewed":
			st.renewals[e.service]++
		case "call-ok":
			st.ok++
			st.seenRecv[e.serial] = true
			st.seenSend[e.peerSeen] = true
		case "call-failed":
			st.failed++
		case "refused":
			st.refused++
		}
		if !started && st.issued == 2 {
			// Both agents wrote their files: start the receiver on them,
			// on a port it chooses and reports ("listening" below).
			started = true
			// Each side accepts only the other's workload identity.
			d.spawn("receiver", mtls, "receiver", "--cert-dir", filepath.Join(d.dir, "receiver"), "--listen", "127.0.0.1:0",
				"--allow", workloadID(senderName))
		}
		if e.kind == "listening" && e.proc == "receiver" {
			// The sender calls at once, so it starts only once the
			// receiver says it listens: a call can then only fail for a
			// reason the demo is about. (A TCP probe instead showed up as
			// a "TLS handshake error ... EOF" warning in the receiver.)
			_, port, _ := net.SplitHostPort(e.text)
			recvURL, recvAddr = fmt.Sprintf("https://%s:%s/", receiverName, port), e.text
			d.spawn("sender", mtls, "sender", "--cert-dir", filepath.Join(d.dir, "sender"),
				"--receiver", recvURL, "--connect", recvAddr,
				"--interval", d.o.interval.String(), "--allow", workloadID(receiverName))
		}
		if e.kind == "call-ok" && !st.intruderTried {
			// Once the sender got through, the other service tries.
			st.intruderTried = true
			st.intruderIn = d.intruderCalls(mtls, recvURL, recvAddr)
		}
		if st.renewals[receiverName] >= d.o.renewals && st.renewals[senderName] >= d.o.renewals && e.kind == "call-ok" {
			callsAfter++
		}
		if callsAfter >= 2 {
			break
		}
	}
	st.print(d)
	if st.failed > 0 {
		fmt.Println("demo: FAILED: some calls failed")
		return 1
	}
	if st.intruderIn || st.refused == 0 {
		fmt.Printf("demo: FAILED: the receiver did not refuse %s (refusals logged: %d)\n", intruderName, st.refused)
		return 1
	}
	fmt.Println("demo: ok")
	return 0
}

// stats are what the summary reports.
type stats struct {
	issued, ok, failed int
	renewals           map[string]int
	seenRecv, seenSend map[string]bool // certificate serials seen across calls
	refused            int             // callers the receiver turned away
	intruderTried      bool
	intruderIn         bool // the intruder's call succeeded: the demo fails
}

func (st *stats) print(d *demo) {
	fmt.Printf("summary: %d calls, %d ok, %d failed in %s; %s renewed %d times, %s renewed %d times; "+
		"the sender saw %d receiver certificates and the receiver saw %d sender certificates; "+
		"the receiver refused %d callers with another identity\n",
		st.ok+st.failed, st.ok, st.failed, time.Since(d.start).Round(time.Second),
		receiverName, st.renewals[receiverName], senderName, st.renewals[senderName], len(st.seenRecv), len(st.seenSend), st.refused)
}

// print writes one line per event.
func (d *demo) print(e event) {
	at := fmt.Sprintf("%2d:%02d", int(e.at.Minutes()), int(e.at.Seconds())%60)
	switch e.kind {
	case "obtained", "renewed", "unchanged":
		kind := e.kind
		if kind == "obtained" {
			kind = "issued"
		}
		fmt.Printf("%s  %-19s %-8s serial %s  expires %s  next check %s  %s\n", at, e.service, kind, short(e.serial), clock(e.expires), clock(e.next), e.identity)
	case "call-ok":
		fmt.Printf("%s  %-19s call ok  %s presented serial %s; it saw %s serial %s\n", at, senderName, dnsPart(e.peer), short(e.serial), senderName, short(e.peerSeen))
	case "refused":
		fmt.Printf("%s  %-19s refused  %s (%s, serial %s, a valid certificate of this CA): %s\n", at, receiverName, e.peer, e.text, short(e.serial), e.reason)
	case "call-failed":
		fmt.Printf("%s  %-19s CALL FAILED  %s\n", at, senderName, e.text)
	case "warning":
		fmt.Printf("%s  %-19s %s\n", at, e.proc, e.text)
	}
}

func short(serial string) string {
	if len(serial) > 12 {
		return serial[:12]
	}
	return serial
}

func clock(rfc3339 string) string {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		return rfc3339
	}
	return t.Local().Format(time.TimeOnly)
}

// shortDuration writes 2m rather than 2m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// waitServer waits for certmint's --ready-file and returns its ACME
// directory URL and the root's SHA-256 fingerprint, as `certmint ca root`
// prints it. The file is written once every listener serves, so no probe
// connection is needed.
func waitServer(readyFile string, limit time.Duration) (string, string, error) {
	var data []byte
	var err error
	for end := time.Now().Add(limit); ; time.Sleep(100 * time.Millisecond) {
		if data, err = os.ReadFile(readyFile); err == nil {
			break
		}
		if time.Now().After(end) {
			return "", "", fmt.Errorf("no %s in %s", readyFile, limit)
		}
	}
	var ready struct {
		DirectoryURL string `json:"directory_url"`
		RootFile     string `json:"root_file"`
	}
	if err := json.Unmarshal(data, &ready); err != nil {
		return "", "", fmt.Errorf("%s: %w", readyFile, err)
	}
	pemData, err := os.ReadFile(ready.RootFile)
	if err != nil {
		return "", "", err
	}
	block, _ := pem.Decode(pemData)
	if block == nil {
		return "", "", errors.New("no PEM in " + ready.RootFile)
	}
	sum := sha256.Sum256(block.Bytes)
	return ready.DirectoryURL, hex.EncodeToString(sum[:]), nil
}

// proc is one child process and its log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	log     string
	done    chan struct{}
	stopped bool
}

// spawn runs a child, logging its output to a file and turning its lines
// into events; a child that exits before stopAll is an "exited" event.
func (d *demo) spawn(name, bin string, args ...string) {
	logPath := filepath.Join(d.dir, strings.ReplaceAll(name, " ", "-")+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		d.events <- event{proc: name, kind: "exited", text: err.Error()}
		return
	}
	cmd := exec.Command(bin, args...)
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		d.events <- event{proc: name, kind: "exited", text: err.Error()}
		return
	}
	d.mu.Lock()
	d.procs = append(d.procs, p)
	d.mu.Unlock()
	var wg sync.WaitGroup
	var logMu sync.Mutex
	for _, r := range []io.Reader{stdout, stderr} {
		wg.Add(1)
		go func(r io.Reader) {
			defer wg.Done()
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				line := sc.Text()
				logMu.Lock()
				fmt.Fprintln(logFile, line)
				logMu.Unlock()
				if e, ok := parseLine(name, line); ok {
					e.at = time.Since(d.start)
					d.events <- e
				}
			}
		}(r)
	}
	go func() {
		wg.Wait()
		_ = cmd.Wait()
		logFile.Close()
		d.mu.Lock()
		stopped := p.stopped
		d.mu.Unlock()
		close(p.done)
		if !stopped {
			d.events <- event{at: time.Since(d.start), proc: name, kind: "exited"}
		}
	}()
}

// stopAll ends the children in reverse order of start: SIGTERM, then
// SIGKILL after ten seconds.
func (d *demo) stopAll() {
	d.mu.Lock()
	procs := append([]*proc(nil), d.procs...)
	for _, p := range procs {
		p.stopped = true
	}
	d.mu.Unlock()
	go func() { // nobody reads events any more
		for range d.events {
		}
	}()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// tail is the end of a child's log, for a failure message.
func (d *demo) tail(name string) string {
	data, _ := os.ReadFile(filepath.Join(d.dir, strings.ReplaceAll(name, " ", "-")+".log"))
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return "    " + strings.Join(lines, "\n    ") + "\n"
}

// parseLine turns a child's output line into an event: the agent's line
// per action, or the sender's slog lines for calls; warnings and errors
// from any child are shown as they are.
func parseLine(proc, line string) (event, bool) {
	f := fields(line)
	if action, _, ok := strings.Cut(line, " names="); ok && !strings.Contains(action, "=") {
		return event{proc: proc, kind: action, service: f["names"], serial: f["serial"], expires: f["expires"], next: f["next_check"],
			identity: f["identity"]}, true
	}
	switch f["msg"] {
	case "receiver listening":
		return event{proc: proc, kind: "listening", text: f["addr"]}, true
	case "call ok":
		// answer: "hello sender.demo.test (serial X), this is receiver.demo.test"
		seen := ""
		if _, after, ok := strings.Cut(f["answer"], "(serial "); ok {
			seen, _, _ = strings.Cut(after, ")")
		}
		return event{proc: proc, kind: "call-ok", peer: f["peer"], serial: f["peer_serial"], peerSeen: seen}, true
	case "call failed":
		return event{proc: proc, kind: "call-failed", text: f["err"]}, true
	case "caller refused":
		return event{proc: proc, kind: "refused", peer: f["peer_id"], text: f["peer_names"], serial: f["peer_serial"], reason: f["reason"]}, true
	}
	if quietHandshakeError(f["msg"]) {
		return event{}, false
	}
	if f["level"] == "WARN" || f["level"] == "ERROR" || strings.HasPrefix(line, "Error") || strings.HasPrefix(line, "mtls-demo:") {
		return event{proc: proc, kind: "warning", text: line}, true
	}
	return event{}, false
}

// fields reads key=value pairs, values possibly quoted (slog's text form).
func fields(line string) map[string]string {
	out := map[string]string{}
	for len(line) > 0 {
		line = strings.TrimLeft(line, " ")
		eq := strings.IndexByte(line, '=')
		if eq <= 0 {
			break
		}
		key, rest := line[:eq], line[eq+1:]
		if strings.ContainsRune(key, ' ') {
			_, line, _ = strings.Cut(line, " ")
			continue
		}
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := 1
			for end < len(rest) && rest[end] != '"' {
				if rest[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(rest) {
				end = len(rest) - 1
			}
			val, _ = strconv.Unquote(rest[:end+1])
			rest = rest[end+1:]
		} else {
			val, rest, _ = strings.Cut(rest, " ")
		}
		out[key] = val
		line = rest
	}
	return out
}
