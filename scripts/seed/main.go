// Command seed fills a certmint database with N issued certificates (one
// account, rows as the server writes them: a distinct 480-byte DER and
// the chain PEM every certificate row carries), to measure issuance, the console,
// backups and restores with a large history. Run it on a stopped server's
// SQLite database, after one `certmint serve` created it, or on any
// Postgres database (its schema is made here if needed):
//
//	go run ./scripts/seed -data ./certmint-data -n 1000000
//	go run ./scripts/seed -db postgres://user@host/certmint -n 1000000
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/storage"
)

// certColumns are the columns seed writes; the rest keep their defaults.
var certColumns = []string{"id", "serial", "account_id", "order_id", "names", "common_name", "profile", "key_hash",
	"not_before", "not_after", "der", "chain_pem", "revoked", "revocation_reason", "ari_id", "renew_now", "replaced_by", "created_at"}

func main() {
	data := flag.String("data", "./certmint-data", "data directory of a stopped server (SQLite)")
	dsn := flag.String("db", "", "a Postgres URL instead of --data's SQLite database")
	n := flag.Int("n", 1000000, "certificates to add")
	flag.Parse()
	ctx := context.Background()
	target := *dsn
	if target == "" {
		target = filepath.Join(*data, "certmint.db")
	}
	// Open through storage once so the schema is current.
	st, err := storage.Open(ctx, target, storage.Options{})
	if err != nil {
		log.Fatal(err)
	}
	acct := &acme.Account{ID: acme.NewID(), KeyThumbprint: "seed-" + acme.NewID(), KeyJWK: "{}", Status: acme.StatusValid, CreatedAt: time.Now()}
	if err := st.CreateAccount(ctx, acct); err != nil {
		log.Fatal(err)
	}
	st.Close()
	chain := fakeChainPEM()
	row := func(i int) []any {
		der := make([]byte, 480) // the size of a P-256 leaf; random, as DER is to a compressor
		rand.Read(der)
		serial := make([]byte, 16)
		rand.Read(serial)
		now := time.Now().UTC()
		nb := now.Add(-time.Duration(i) * time.Second)
		name := fmt.Sprintf("svc-%07d.seed.internal", i)
		return []any{acme.NewID(), hex.EncodeToString(serial), acct.ID, acme.NewID(), name, name, "default", "",
			nb, nb.Add(90 * 24 * time.Hour), der, chain, false, 0, "", false, "", now}
	}
	start := time.Now()
	if *dsn != "" {
		err = seedPostgres(ctx, *dsn, *n, row)
	} else {
		err = seedSQLite(target, *n, row)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("added %d certificates in %s\n", *n, time.Since(start).Round(time.Second))
}

func seedSQLite(path string, n int, row func(int) []any) error {
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_time_format=sqlite")
	if err != nil {
		return err
	}
	defer db.Close()
	const batch = 500
	cols := "(" + strings.Join(certColumns, ", ") + ")"
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", len(certColumns)), ",") + ")"
	for done := 0; done < n; done += batch {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		var sb strings.Builder
		args := make([]any, 0, batch*len(certColumns))
		for i := 0; i < batch && done+i < n; i++ {
			if i > 0 {
				sb.WriteString(",")
			}
			sb.WriteString(one)
			args = append(args, row(done+i)...)
		}
		if _, err := tx.Exec("INSERT INTO certificates "+cols+" VALUES "+sb.String(), args...); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		if done%100000 == 0 {
			fmt.Printf("%d certificates\n", done)
		}
	}
	return nil
}

// seedPostgres streams the rows with COPY, the fastest way into Postgres.
func seedPostgres(ctx context.Context, dsn string, n int, row func(int) []any) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	i := 0
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"certificates"}, certColumns, pgx.CopyFromFunc(func() ([]any, error) {
		if i >= n {
			return nil, nil
		}
		i++
		if i%100000 == 0 {
			fmt.Printf("%d certificates\n", i)
		}
		return row(i), nil
	}))
	return err
}

// fakeChainPEM is the size and shape of the intermediate-plus-root chain
// the server stores with every certificate (two P-256 certificates).
func fakeChainPEM() string {
	var sb strings.Builder
	for range 2 {
		body := make([]byte, 480)
		rand.Read(body)
		sb.WriteString("-----BEGIN CERTIFICATE-----\n")
		enc := hex.EncodeToString(body) // stands in for base64: same order of size
		for len(enc) > 64 {
			sb.WriteString(enc[:64] + "\n")
			enc = enc[64:]
		}
		sb.WriteString(enc + "\n-----END CERTIFICATE-----\n")
	}
	return sb.String()
}
