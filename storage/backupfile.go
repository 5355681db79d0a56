package storage

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/certmint/certmint/ca"
)

// The backup file is one gzip stream of JSON lines, readable with zcat:
//
//	{"header":{...}}                                   what made it, the schema
//	{"table":"accounts","columns":[["id","text"],...]} one section per table
//	["0f3a...","...",true,"2031-03-14T14:09:26.535897Z",null,...]
//	{"end":"accounts","rows":2,"sha256":"..."}         rows and SHA-256 of the row lines
//	...
//	{"manifest":{...}}                                 the header again, every table's
//	                                                   count and checksum, a summary and
//	                                                   the SHA-256 of all lines before it
//
// Values are engine-neutral: each column has one of the kinds below, and a
// value is JSON null or the kind's encoding, so a SQLite backup restores
// into Postgres and back. JSON lines rather than a binary format so an
// operator can look inside with zcat and jq; gzip makes the repeated
// chain PEMs and base64 nearly free.

// backupFormat names the format in the header; backupVersion is bumped
// when a reader of the old version could misread the new one.
const (
	backupFormat  = "certmint-backup"
	backupVersion = 1
	// maxBackupLine bounds one line in memory while reading, so a damaged
	// file cannot make a reader allocate without end. The largest real
	// line is a CRL of every revoked certificate, a few MB at most.
	maxBackupLine = 256 << 20
)

// Errors a backup file or its restore can give; each means bad input, not
// a failure of the machine.
var (
	// ErrBackupDamaged: not a certmint backup, truncated, or changed after
	// it was written (a checksum does not match).
	ErrBackupDamaged = errors.New("the backup file is damaged")
	// ErrBackupNewer: the backup's schema has a migration this binary
	// does not know; restore it with the certmint that made it, or newer.
	ErrBackupNewer = errors.New("the backup comes from a newer certmint")
	// ErrBackupUnmappable: the backup's engine or a column's type cannot
	// be mapped onto this schema.
	ErrBackupUnmappable = errors.New("the backup cannot be mapped onto this database")
	// ErrTargetNotEmpty: the restore target already holds data.
	ErrTargetNotEmpty = errors.New("the restore target is not empty")
)

// Column kinds of the neutral encoding.
const (
	kindText  = "text"  // JSON string; {"base64":"..."} when not UTF-8
	kindInt   = "int"   // JSON integer
	kindFloat = "float" // JSON number
	kindBool  = "bool"  // true or false
	kindTime  = "time"  // RFC 3339 string in UTC, nanoseconds as stored
	kindBytes = "bytes" // standard base64 string
)

// BackupHeader says what made a backup and what schema its rows have.
type BackupHeader struct {
	Format     string    `json:"format"`
	Version    int       `json:"version"`
	Certmint   string    `json:"certmint"` // version of the binary that wrote it
	Engine     string    `json:"engine"`   // sqlite or postgres
	Created    time.Time `json:"created"`  // when the snapshot was taken
	Schema     string    `json:"schema"`   // the last migration ID
	Migrations []string  `json:"migrations"`
}

// Manifest is the last line of a backup: the header, each table's row
// count and checksum, and what the backup holds.
type Manifest struct {
	BackupHeader
	Tables  []TableSum    `json:"tables"`
	Summary BackupSummary `json:"summary"`
	// ContentSHA256 covers every uncompressed byte before the manifest
	// line, the header and the column lists included.
	ContentSHA256 string `json:"content_sha256"`
}

// TableSum is one table of a backup: rows and the SHA-256 of its row lines.
type TableSum struct {
	Name   string `json:"name"`
	Rows   int64  `json:"rows"`
	SHA256 string `json:"sha256"`
}

// BackupSummary is what `backup verify` prints about the contents.
type BackupSummary struct {
	Issuers           []BackupIssuer `json:"issuers"`
	NewestCertificate *time.Time     `json:"newest_certificate,omitempty"`
}

// BackupIssuer is one CA issuer in a backup, with where its key is.
type BackupIssuer struct {
	ID       string        `json:"id"`
	Role     string        `json:"role"`
	State    string        `json:"state"`
	Subject  string        `json:"subject,omitempty"`
	NotAfter *time.Time    `json:"not_after,omitempty"`
	Key      ca.KeyStorage `json:"key"`
	KeyURI   string        `json:"key_uri,omitempty"` // a PKCS#11 key's URI (never a PIN)
}

// Rows returns the row count of table, 0 when the backup has none.
func (m *Manifest) Rows(table string) int64 {
	for _, t := range m.Tables {
		if t.Name == table {
			return t.Rows
		}
	}
	return 0
}

// column is one column of a table section.
type column struct {
	Name string
	Kind string
}

func (c column) MarshalJSON() ([]byte, error) { return json.Marshal([2]string{c.Name, c.Kind}) }

func (c *column) UnmarshalJSON(b []byte) error {
	var v [2]string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	c.Name, c.Kind = v[0], v[1]
	return nil
}

// backupLine is every line of the file that is not a row.
type backupLine struct {
	Header   *BackupHeader `json:"header,omitempty"`
	Table    string        `json:"table,omitempty"`
	Columns  []column      `json:"columns,omitempty"`
	End      string        `json:"end,omitempty"`
	Rows     int64         `json:"rows,omitempty"`
	SHA256   string        `json:"sha256,omitempty"`
	Manifest *Manifest     `json:"manifest,omitempty"`
}

// backupWriter writes the format above to w.
type backupWriter struct {
	gz      *gzip.Writer
	content hash.Hash // every byte before the manifest
	table   string
	cols    []column
	rows    int64
	sum     hash.Hash // the current table's row lines
	buf     []byte
	sums    []TableSum
}

func newBackupWriter(w io.Writer) *backupWriter {
	// BestSpeed: the rows are mostly base64 DER and repeated PEM; level 1
	// gets most of the gain at a fraction of the default level's CPU.
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	return &backupWriter{gz: gz, content: sha256.New(), sum: sha256.New()}
}

func (w *backupWriter) writeLine(b []byte) error {
	w.content.Write(b)
	_, err := w.gz.Write(b)
	return err
}

func (w *backupWriter) control(l backupLine) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return w.writeLine(append(b, '\n'))
}

func (w *backupWriter) header(h BackupHeader) error { return w.control(backupLine{Header: &h}) }

func (w *backupWriter) beginTable(name string, cols []column) error {
	w.table, w.cols, w.rows = name, cols, 0
	w.sum.Reset()
	return w.control(backupLine{Table: name, Columns: cols})
}

// row encodes one row read from the database; vals are what the driver
// returned, in w.cols order.
func (w *backupWriter) row(vals []any) error {
	b := append(w.buf[:0], '[')
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendValue(b, w.cols[i].Kind, v); err != nil {
			return fmt.Errorf("table %s column %s: %w", w.table, w.cols[i].Name, err)
		}
	}
	b = append(b, ']', '\n')
	w.buf = b
	w.sum.Write(b)
	w.rows++
	return w.writeLine(b)
}

func (w *backupWriter) endTable() (TableSum, error) {
	s := TableSum{Name: w.table, Rows: w.rows, SHA256: hex.EncodeToString(w.sum.Sum(nil))}
	w.sums = append(w.sums, s)
	return s, w.control(backupLine{End: s.Name, Rows: s.Rows, SHA256: s.SHA256})
}

// finish writes the manifest (m's Tables and ContentSHA256 are filled in
// here) and ends the gzip stream.
func (w *backupWriter) finish(m *Manifest) error {
	m.Tables = w.sums
	m.ContentSHA256 = hex.EncodeToString(w.content.Sum(nil))
	b, err := json.Marshal(backupLine{Manifest: m})
	if err != nil {
		return err
	}
	if _, err := w.gz.Write(append(b, '\n')); err != nil {
		return err
	}
	return w.gz.Close()
}

// backupReader reads the format back, checking every checksum on the way.
type backupReader struct {
	gz      *gzip.Reader
	br      *bufio.Reader
	content hash.Hash
	header  BackupHeader
	sums    []TableSum
	// manifest is set once the last line was read and checked.
	manifest *Manifest
}

// openBackupReader reads and checks the header line.
func openBackupReader(r io.Reader) (*backupReader, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: not a certmint backup (%v)", ErrBackupDamaged, err)
	}
	// gzip stays multistream: after the backup's one stream it reads on,
	// so bytes appended to the file are an error or data after the
	// manifest (checkManifest), never silently ignored as they would be
	// with Multistream(false), which stops at the first stream's end.
	br := &backupReader{gz: gz, br: bufio.NewReaderSize(gz, 1<<16), content: sha256.New()}
	line, err := br.readLine()
	if err != nil {
		return nil, err
	}
	var l backupLine
	if json.Unmarshal(line, &l) != nil || l.Header == nil || l.Header.Format != backupFormat {
		return nil, fmt.Errorf("%w: not a certmint backup", ErrBackupDamaged)
	}
	if l.Header.Version != backupVersion {
		return nil, fmt.Errorf("%w: backup format version %d; this certmint reads version %d", ErrBackupNewer, l.Header.Version, backupVersion)
	}
	br.content.Write(line)
	br.header = *l.Header
	return br, nil
}

// readLine returns the next line, newline included; the slice is valid
// until the next call. Callers add it to the content checksum once they
// know it is not the manifest.
func (r *backupReader) readLine() ([]byte, error) {
	var long []byte
	for {
		frag, err := r.br.ReadSlice('\n')
		switch {
		case err == nil:
			if long != nil {
				frag = append(long, frag...)
			}
			return frag, nil
		case errors.Is(err, bufio.ErrBufferFull):
			long = append(long, frag...)
			if len(long) > maxBackupLine {
				return nil, fmt.Errorf("%w: a line longer than %d MB", ErrBackupDamaged, maxBackupLine>>20)
			}
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("%w: it ends early (truncated?)", ErrBackupDamaged)
		default:
			return nil, fmt.Errorf("%w: %v (truncated or changed?)", ErrBackupDamaged, err)
		}
	}
}

// tableSection is one table being read.
type tableSection struct {
	Name    string
	Columns []column
	r       *backupReader
	sum     hash.Hash
	rows    int64
	done    bool
}

// nextTable returns the next table section, or nil once the manifest was
// read and checked (r.manifest). The previous section must be read to
// its end first.
func (r *backupReader) nextTable() (*tableSection, error) {
	line, err := r.readLine()
	if err != nil {
		return nil, err
	}
	var l backupLine
	if err := json.Unmarshal(line, &l); err != nil {
		return nil, fmt.Errorf("%w: a section header does not parse", ErrBackupDamaged)
	}
	if l.Manifest != nil {
		return nil, r.checkManifest(l.Manifest)
	}
	r.content.Write(line)
	if l.Table == "" || len(l.Columns) == 0 {
		return nil, fmt.Errorf("%w: expected a table section", ErrBackupDamaged)
	}
	return &tableSection{Name: l.Table, Columns: l.Columns, r: r, sum: sha256.New()}, nil
}

// checkManifest compares the manifest with what was read, then checks
// that the gzip stream ends right after it.
func (r *backupReader) checkManifest(m *Manifest) error {
	if got := hex.EncodeToString(r.content.Sum(nil)); got != m.ContentSHA256 {
		return fmt.Errorf("%w: its content checksum does not match the manifest (the file was changed after it was written)", ErrBackupDamaged)
	}
	if len(m.Tables) != len(r.sums) {
		return fmt.Errorf("%w: the manifest lists %d tables, the file holds %d", ErrBackupDamaged, len(m.Tables), len(r.sums))
	}
	for i, t := range m.Tables {
		if t != r.sums[i] {
			return fmt.Errorf("%w: table %s does not match the manifest", ErrBackupDamaged, t.Name)
		}
	}
	h := r.header
	if m.Format != h.Format || m.Version != h.Version || m.Certmint != h.Certmint || m.Engine != h.Engine || m.Schema != h.Schema ||
		!m.Created.Equal(h.Created) || fmt.Sprint(m.Migrations) != fmt.Sprint(h.Migrations) {
		return fmt.Errorf("%w: the manifest does not match the header", ErrBackupDamaged)
	}
	if _, err := r.br.ReadByte(); !errors.Is(err, io.EOF) {
		if err == nil {
			return fmt.Errorf("%w: data after the manifest", ErrBackupDamaged)
		}
		return fmt.Errorf("%w: %v", ErrBackupDamaged, err)
	}
	r.manifest = m
	return nil
}

// next returns the next row's values, decoded by column kind (string,
// int64, float64, bool, time.Time, []byte or nil), or io.EOF after the
// section's end line, whose count and checksum it checks.
func (t *tableSection) next() ([]any, error) {
	if t.done {
		return nil, io.EOF
	}
	line, err := t.r.readLine()
	if err != nil {
		return nil, err
	}
	t.r.content.Write(line)
	if len(line) > 0 && line[0] == '{' {
		return nil, t.end(line)
	}
	t.sum.Write(line)
	t.rows++
	vals, err := decodeRow(line, t.Columns)
	if err != nil {
		return nil, fmt.Errorf("%w: table %s row %d: %v", ErrBackupDamaged, t.Name, t.rows, err)
	}
	return vals, nil
}

func (t *tableSection) end(line []byte) error {
	var l backupLine
	if err := json.Unmarshal(line, &l); err != nil || l.End != t.Name {
		return fmt.Errorf("%w: table %s does not end properly", ErrBackupDamaged, t.Name)
	}
	sum := TableSum{Name: t.Name, Rows: t.rows, SHA256: hex.EncodeToString(t.sum.Sum(nil))}
	if l.Rows != sum.Rows || l.SHA256 != sum.SHA256 {
		return fmt.Errorf("%w: table %s: %d rows, checksum %.12s…; the file says %d rows, %.12s… (changed after it was written?)",
			ErrBackupDamaged, t.Name, sum.Rows, sum.SHA256, l.Rows, l.SHA256)
	}
	t.done = true
	t.r.sums = append(t.r.sums, sum)
	return io.EOF
}

// each calls fn with every remaining row of the section, checking the
// section's end; fn's error stops it.
func (t *tableSection) each(fn func(vals []any) error) error {
	for {
		vals, err := t.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
}

// skip reads the rest of the section, checking it.
func (t *tableSection) skip() error { return t.each(func([]any) error { return nil }) }

// VerifyBackup reads a whole backup, decoding every row and checking every
// checksum, and returns its manifest. A backup that is not whole and
// unchanged is ErrBackupDamaged. No checksum covers the manifest's
// summary (what `backup verify` prints: the issuers and where their keys
// are), so it is derived again from the rows and must match.
func VerifyBackup(r io.Reader) (*Manifest, error) {
	br, err := openBackupReader(r)
	if err != nil {
		return nil, err
	}
	var (
		issuers []ca.IssuerRecord
		newest  *time.Time
	)
	for {
		sec, err := br.nextTable()
		if err != nil {
			return nil, err
		}
		if sec == nil {
			break
		}
		switch sec.Name {
		case (issuerRow{}).TableName():
			err = sec.each(func(vals []any) error {
				issuers = append(issuers, issuerFromValues(sec.Columns, vals))
				return nil
			})
		case (certificateRow{}).TableName():
			created := createdAtColumn(sec.Columns)
			err = sec.each(func(vals []any) error {
				newest = newerCreatedAt(newest, created, vals)
				return nil
			})
		default:
			err = sec.skip()
		}
		if err != nil {
			return nil, err
		}
	}
	m := br.manifest
	if !sameSummary(m.Summary, BackupSummary{Issuers: summarizeIssuers(issuers), NewestCertificate: newest}) {
		return nil, fmt.Errorf("%w: the manifest's summary does not match the rows (the file was changed after it was written)", ErrBackupDamaged)
	}
	return m, nil
}

// sameSummary compares two summaries; the issuers in any order (the
// writer lists them by age, the table section in the database's order).
func sameSummary(a, b BackupSummary) bool {
	if (a.NewestCertificate == nil) != (b.NewestCertificate == nil) ||
		(a.NewestCertificate != nil && !a.NewestCertificate.Equal(*b.NewestCertificate)) {
		return false
	}
	if len(a.Issuers) != len(b.Issuers) {
		return false
	}
	canon := func(s []BackupIssuer) string {
		s = slices.Clone(s)
		slices.SortFunc(s, func(x, y BackupIssuer) int { return strings.Compare(x.ID, y.ID) })
		b, _ := json.Marshal(s)
		return string(b)
	}
	return len(a.Issuers) == 0 || canon(a.Issuers) == canon(b.Issuers)
}
