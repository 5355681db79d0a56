// Command benchbackup times `certmint backup` and `certmint restore` of a
// large database on SQLite and on Postgres, with each run's peak RSS, to
// show both are bounded in time and flat in memory (the memory at the
// small size and at the full size should match). `make bench-backup` runs
// it; BENCHMARKS.md has the figures.
//
//	go run ./scripts/benchbackup -bin bin/certmint -n 1000000 -small 100000 -runs 3
//
// For each engine it creates a server's database (`certmint serve` once,
// CA keys encrypted), seeds -small certificates with scripts/seed, measures,
// seeds up to -n and measures again. Postgres is a throwaway cluster from
// tools/pgtest (fsync off: it measures certmint, not the disk). A restore
// goes into a fresh data directory or database each run.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/certmint/certmint/tools/pgtest"
)

const passphrase = "bench passphrase"

func main() {
	bin := flag.String("bin", "bin/certmint", "the certmint binary to measure")
	n := flag.Int("n", 1000000, "certificates at the full size")
	small := flag.Int("small", 100000, "certificates at the small size (0: skip)")
	runs := flag.Int("runs", 3, "runs of each measurement")
	engines := flag.String("engines", "sqlite,postgres", "comma-separated engines")
	flag.Parse()
	var err error
	if *bin, err = filepath.Abs(*bin); err != nil {
		log.Fatal(err)
	}
	tmp, err := os.MkdirTemp("", "benchbackup-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	b := &bench{bin: *bin, tmp: tmp, runs: *runs}
	fmt.Printf("benchbackup: %s, %d runs each; load average at start: %s\n", *bin, *runs, loadavg())
	for _, engine := range strings.Split(*engines, ",") {
		if err := b.engine(engine, *small, *n); err != nil {
			log.Fatalf("%s: %v", engine, err)
		}
	}
	fmt.Printf("\nload average at the end: %s (the machine is shared: wall times are noisy, CPU times less so)\n\n", loadavg())
	b.report()
}

type bench struct {
	bin, tmp string
	runs     int
	results  []result
	pg       *pgtest.Cluster
}

// result is the runs of one measurement.
type result struct {
	engine, op string
	rows       int
	wall, cpu  []time.Duration
	rss        []int64 // KiB
	size       int64
}

func (b *bench) engine(engine string, small, n int) error {
	data := filepath.Join(b.tmp, engine+"-data")
	var dsn string
	if engine == "postgres" {
		if b.pg == nil {
			pg, err := pgtest.StartCluster()
			if err != nil {
				return err
			}
			b.pg = pg
			defer pg.Stop()
		}
		var err error
		if dsn, err = b.pg.CreateDatabase(context.Background()); err != nil {
			return err
		}
	}
	if err := b.createServer(data, dsn); err != nil {
		return err
	}
	seeded := 0
	for _, size := range []int{small, n} {
		if size <= seeded {
			continue
		}
		if err := b.seed(data, dsn, size-seeded); err != nil {
			return err
		}
		seeded = size
		if err := b.measure(engine, data, dsn, size); err != nil {
			return err
		}
	}
	if engine == "sqlite" {
		return b.vacuumInto(filepath.Join(data, "certmint.db"), n)
	}
	return nil
}

// createServer runs `certmint serve` until it is up, so the database
// holds a CA (encrypted keys) and a console user, then stops it.
func (b *bench) createServer(data, dsn string) error {
	args := []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--crl-listen", "", "--log-level", "info"}
	if dsn != "" {
		args = append(args, "--db", dsn)
	}
	cmd := exec.Command(b.bin, args...)
	cmd.Env = append(os.Environ(), "CERTMINT_CA_PASSPHRASE="+passphrase)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(stderr)
	up := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "certmint serving") {
			up = true
			break
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	go func() { _, _ = bufio.NewReader(stderr).WriteTo(devNull{}) }()
	_ = cmd.Wait()
	if !up {
		return fmt.Errorf("certmint serve did not come up")
	}
	return nil
}

type devNull struct{}

func (devNull) Write(p []byte) (int, error) { return len(p), nil }

func (b *bench) seed(data, dsn string, count int) error {
	args := []string{"run", "./scripts/seed", "-n", fmt.Sprint(count)}
	if dsn != "" {
		args = append(args, "-db", dsn)
	} else {
		args = append(args, "-data", data)
	}
	start := time.Now()
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("seed: %v\n%s", err, out)
	}
	fmt.Printf("seeded %d certificates in %s\n", count, time.Since(start).Round(time.Second))
	return nil
}

// measure backs the database up and restores it, runs times each.
func (b *bench) measure(engine, data, dsn string, rows int) error {
	source := []string{"--data", data}
	if dsn != "" {
		source = []string{"--db", dsn}
	}
	file := filepath.Join(b.tmp, "bench.backup")
	backup := result{engine: engine, op: "backup", rows: rows}
	restore := result{engine: engine, op: "restore", rows: rows}
	verify := result{engine: engine, op: "backup verify", rows: rows}
	for run := 0; run < b.runs; run++ {
		if err := b.run(&backup, append([]string{"backup", "--out", file}, source...)...); err != nil {
			return err
		}
		if st, err := os.Stat(file); err == nil {
			backup.size = st.Size()
		}
		if run == 0 {
			if err := b.run(&verify, "backup", "verify", file); err != nil {
				return err
			}
		}
		target, cleanup, err := b.restoreTarget(engine, run)
		if err != nil {
			return err
		}
		err = b.run(&restore, append([]string{"restore", "--in", file}, target...)...)
		cleanup()
		if err != nil {
			return err
		}
	}
	os.Remove(file)
	b.results = append(b.results, backup, verify, restore)
	return nil
}

// restoreTarget is a fresh target for one restore and how to remove it.
func (b *bench) restoreTarget(engine string, run int) ([]string, func(), error) {
	if engine == "sqlite" {
		dir := filepath.Join(b.tmp, fmt.Sprintf("restored-%d", run))
		return []string{"--data", dir}, func() { os.RemoveAll(dir) }, nil
	}
	dsn, err := b.pg.CreateDatabase(context.Background())
	if err != nil {
		return nil, nil, err
	}
	return []string{"--db", dsn}, func() { dropDatabase(b.pg, dsn) }, nil
}

func dropDatabase(pg *pgtest.Cluster, dsn string) {
	name := dsn[strings.LastIndex(dsn, "/")+1:]
	if i := strings.IndexByte(name, '?'); i >= 0 {
		name = name[:i]
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, fmt.Sprintf("DROP DATABASE %q", name))
}

// run runs the binary once and adds its wall time, CPU time and peak RSS
// (getrusage of the child) to r.
func (b *bench) run(r *result, args ...string) error {
	cmd := exec.Command(b.bin, args...)
	cmd.Env = append(os.Environ(), "CERTMINT_CA_PASSPHRASE="+passphrase)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	wall := time.Since(start)
	if err != nil {
		return fmt.Errorf("certmint %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	r.wall, r.cpu, r.rss = append(r.wall, wall), append(r.cpu, cpu), append(r.rss, ru.Maxrss)
	fmt.Printf("%-8s %-13s %8d rows: %8s wall, %8s CPU, %4d MiB peak RSS  (%s)\n", r.engine, r.op, r.rows,
		wall.Round(100*time.Millisecond), cpu.Round(100*time.Millisecond), ru.Maxrss/1024, firstLine(string(out)))
	return nil
}

// vacuumInto times SQLite's own online copy, the alternative to the read
// transaction a backup streams from: it writes the whole database once
// more before a single row could be encoded.
func (b *bench) vacuumInto(path string, rows int) error {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer db.Close()
	out := filepath.Join(b.tmp, "vacuum-into.db")
	defer os.Remove(out)
	start := time.Now()
	if _, err := db.Exec("VACUUM INTO ?", out); err != nil {
		return err
	}
	wall := time.Since(start)
	st, _ := os.Stat(out)
	r := result{engine: "sqlite", op: "VACUUM INTO", rows: rows, wall: []time.Duration{wall}, size: st.Size()}
	b.results = append(b.results, r)
	fmt.Printf("sqlite   VACUUM INTO   %8d rows: %8s wall (in-process; the copy alone, %d MiB)\n", rows, wall.Round(100*time.Millisecond), st.Size()>>20)
	return nil
}

func (b *bench) report() {
	fmt.Println("| engine | certificates | operation | runs | wall, median (min–max) | CPU, median | peak RSS, median (min–max) | file |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, r := range b.results {
		cpu, rss, size := "—", "—", "—"
		if len(r.cpu) > 0 {
			cpu = fmtDur(median(r.cpu))
		}
		if len(r.rss) > 0 {
			rss = fmt.Sprintf("%d MiB (%d–%d)", median(r.rss)>>10, slices.Min(r.rss)>>10, slices.Max(r.rss)>>10)
		}
		if r.size > 0 {
			size = fmt.Sprintf("%d MiB", r.size>>20)
		}
		fmt.Printf("| %s | %d | %s | %d | %s (%s–%s) | %s | %s | %s |\n", r.engine, r.rows, r.op, len(r.wall),
			fmtDur(median(r.wall)), fmtDur(slices.Min(r.wall)), fmtDur(slices.Max(r.wall)), cpu, rss, size)
	}
}

func median[T int64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func fmtDur(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}
