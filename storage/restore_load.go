package storage

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// loader inserts the table sections of a backup, in batches of multi-row
// INSERTs sent straight to the transaction's connection (gorm's builder
// would re-parse thousands of placeholders per batch).
type loader struct {
	ctx      context.Context
	tx       *gorm.DB
	engine   string
	tables   []string // the target's tables
	progress func(table string, rows int64, done bool)
}

// maxBatchParams keeps a batch under both engines' limits on bound
// parameters (SQLite 32766, Postgres 65535).
const (
	maxBatchParams = 30000
	maxBatchRows   = 1000
)

// table loads one section; buffered holds its rows when they were read
// ahead (the CA issuers), else they stream from sec.
func (l *loader) table(sec *tableSection, buffered [][]any) error {
	if !slices.Contains(l.tables, sec.Name) {
		return fmt.Errorf("%w: table %s does not exist in the backup's schema here", ErrBackupUnmappable, sec.Name)
	}
	target, err := l.columns(sec.Name)
	if err != nil {
		return err
	}
	kinds, err := mapColumns(sec.Name, sec.Columns, target)
	if err != nil {
		return err
	}
	// Rows a migration may have seeded are the backup's to give.
	if err := l.tx.Exec("DELETE FROM " + quoteIdent(sec.Name)).Error; err != nil {
		return fmt.Errorf("restore table %s: %w", sec.Name, mapErr(err))
	}
	per := max(1, min(maxBatchRows, maxBatchParams/len(kinds)))
	args := make([]any, 0, per*len(kinds))
	full := l.insertSQL(sec.Name, sec.Columns, per)
	var n int64
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		q := full
		if rows := len(args) / len(kinds); rows < per {
			q = l.insertSQL(sec.Name, sec.Columns, rows)
		}
		if _, err := l.tx.Statement.ConnPool.ExecContext(l.ctx, q, args...); err != nil {
			return fmt.Errorf("restore table %s: %w", sec.Name, mapErr(err))
		}
		args = args[:0]
		return nil
	}
	add := func(vals []any) error {
		for i, v := range vals {
			c, err := convertKind(v, kinds[i])
			if err != nil {
				return fmt.Errorf("%w: table %s column %s: %v", ErrBackupUnmappable, sec.Name, sec.Columns[i].Name, err)
			}
			args = append(args, c)
		}
		n++
		if len(args) >= per*len(kinds) {
			if err := flush(); err != nil {
				return err
			}
		}
		if l.progress != nil && n%progressEvery == 0 {
			l.progress(sec.Name, n, false)
		}
		return nil
	}
	for _, vals := range buffered {
		if err := add(vals); err != nil {
			return err
		}
	}
	if buffered == nil {
		if err := sec.each(add); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if l.progress != nil {
		l.progress(sec.Name, n, true)
	}
	return nil
}

// columns returns the target table's columns with their kinds.
func (l *loader) columns(table string) ([]column, error) {
	rows, err := l.tx.Raw("SELECT * FROM " + quoteIdent(table) + " LIMIT 0").Rows()
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, mapErr(err))
	}
	defer rows.Close()
	return columnKinds(rows, table)
}

// mapColumns checks that the backup's columns are exactly the target's
// and that each kind converts; it returns the target kind per backup
// column. The schema is the backup's own (the same migrations made it),
// so the names always match; the kinds differ between engines only as
// SQLite's integer booleans.
func mapColumns(table string, from, to []column) ([]string, error) {
	if len(from) != len(to) {
		return nil, fmt.Errorf("%w: table %s has %d columns in the backup and %d here", ErrBackupUnmappable, table, len(from), len(to))
	}
	kinds := make([]string, len(from))
	for i, c := range from {
		j := slices.IndexFunc(to, func(t column) bool { return t.Name == c.Name })
		if j < 0 {
			return nil, fmt.Errorf("%w: column %s.%s of the backup does not exist here", ErrBackupUnmappable, table, c.Name)
		}
		if !kindsConvert(c.Kind, to[j].Kind) {
			return nil, fmt.Errorf("%w: column %s.%s is %s in the backup and %s here", ErrBackupUnmappable, table, c.Name, c.Kind, to[j].Kind)
		}
		kinds[i] = to[j].Kind
	}
	return kinds, nil
}

func kindsConvert(from, to string) bool {
	switch {
	case from == to:
		return true
	case from == kindInt && (to == kindBool || to == kindFloat):
		return true
	case from == kindBool && to == kindInt:
		return true
	}
	return false
}

// convertKind turns a decoded backup value into what the target column
// of kind to takes.
func convertKind(v any, to string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch x := v.(type) {
	case int64:
		switch to {
		case kindInt:
			return x, nil
		case kindBool:
			return x != 0, nil
		case kindFloat:
			return float64(x), nil
		}
	case bool:
		switch to {
		case kindBool:
			return x, nil
		case kindInt:
			return boolInt(x), nil
		}
	case string:
		if to == kindText {
			return x, nil
		}
	case float64:
		if to == kindFloat {
			return x, nil
		}
	case time.Time:
		if to == kindTime {
			return x, nil
		}
	case []byte:
		if to == kindBytes {
			return x, nil
		}
	}
	return nil, fmt.Errorf("a %T value does not fit a %s column", v, to)
}

// insertSQL is a multi-row INSERT of rows rows, with the engine's
// placeholders.
func (l *loader) insertSQL(table string, cols []column, rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(quoteIdent(table))
	b.WriteString(" (")
	for i, c := range cols {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(quoteIdent(c.Name))
	}
	b.WriteString(") VALUES ")
	n := 0
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for i := range cols {
			if i > 0 {
				b.WriteByte(',')
			}
			n++
			if l.engine == enginePostgres {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(n))
			} else {
				b.WriteByte('?')
			}
		}
		b.WriteByte(')')
	}
	return b.String()
}
