// Command seed fills a certmint SQLite database with N issued
// certificates (one account, rows as the server writes them), to measure
// issuance and the console with a large history. Run it on a stopped
// server's data directory, after one `certmint serve` created it:
//
//	go run ./scripts/seed -data ./certmint-data -n 1000000
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

	_ "modernc.org/sqlite"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/storage"
)

func main() {
	data := flag.String("data", "./certmint-data", "data directory of a stopped server")
	n := flag.Int("n", 1000000, "certificates to add")
	flag.Parse()
	ctx := context.Background()
	path := filepath.Join(*data, "certmint.db")
	// Open through storage once so the schema is current.
	st, err := storage.Open(ctx, path, storage.Options{})
	if err != nil {
		log.Fatal(err)
	}
	acct := &acme.Account{ID: acme.NewID(), KeyThumbprint: "seed-" + acme.NewID(), KeyJWK: "{}", Status: acme.StatusValid, CreatedAt: time.Now()}
	if err := st.CreateAccount(ctx, acct); err != nil {
		log.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	der := make([]byte, 480) // the size of a P-256 leaf
	rand.Read(der)
	start := time.Now()
	const batch = 500
	cols := "(id, serial, account_id, order_id, names, common_name, profile, key_hash, not_before, not_after, der, chain_pem, revoked, revocation_reason, ari_id, renew_now, replaced_by, created_at)"
	for done := 0; done < *n; done += batch {
		tx, err := db.Begin()
		if err != nil {
			log.Fatal(err)
		}
		var sb strings.Builder
		args := make([]any, 0, batch*18)
		for i := 0; i < batch && done+i < *n; i++ {
			if i > 0 {
				sb.WriteString(",")
			}
			sb.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
			serial := make([]byte, 16)
			rand.Read(serial)
			now := time.Now().UTC()
			nb := now.Add(-time.Duration(done+i) * time.Second)
			name := fmt.Sprintf("svc-%07d.seed.internal", done+i)
			args = append(args, acme.NewID(), hex.EncodeToString(serial), acct.ID, acme.NewID(), name, name, "default", "",
				nb, nb.Add(90*24*time.Hour), der, "", false, 0, "", false, "", now)
		}
		if _, err := tx.Exec("INSERT INTO certificates "+cols+" VALUES "+sb.String(), args...); err != nil {
			log.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			log.Fatal(err)
		}
		if done%100000 == 0 {
			fmt.Printf("%d certificates (%s)\n", done, time.Since(start).Round(time.Second))
		}
	}
	fmt.Printf("added %d certificates in %s\n", *n, time.Since(start).Round(time.Second))
}
