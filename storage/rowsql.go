package storage

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// The statements every issuance makes (reading an order, an authorization
// with its challenges, a certificate; inserting an order with its
// authorizations, challenges and links, and a certificate with its audit
// entry) skip gorm's statement building and reflective scan, and run on
// gorm's own connection or transaction with SQL generated here from the
// row types. The column list is still declared once, by the row type's
// fields (models.go): rowTable derives the list from gorm's parse of the
// struct, so schema_test.go covers these statements too.
//
// Why: through gorm's builder these calls cost about 6% more server CPU
// per certificate (BENCHMARKS.md, fourth round).

// rowTable is a row type's table, columns and field positions.
type rowTable struct {
	name   string
	cols   []string
	fields [][]int // struct field index of each column
	list   string  // "c1, c2, ..."
	marks  string  // "(?, ?, ...)"
}

var rowTables sync.Map // reflect.Type -> *rowTable

// tableOf returns the table of the row type that ptr points to.
func tableOf(ptr tabler) *rowTable {
	typ := reflect.TypeOf(ptr).Elem()
	if t, ok := rowTables.Load(typ); ok {
		return t.(*rowTable)
	}
	s, err := schema.Parse(ptr, &sync.Map{}, schema.NamingStrategy{})
	if err != nil {
		panic(fmt.Sprintf("storage: parse row type %s: %v", typ, err)) // a programming error, caught by every test
	}
	t := &rowTable{name: ptr.TableName()}
	for _, f := range s.Fields {
		if f.DBName == "" {
			continue
		}
		t.cols = append(t.cols, f.DBName)
		t.fields = append(t.fields, f.StructField.Index)
	}
	t.list = strings.Join(t.cols, ", ")
	t.marks = "(" + strings.TrimSuffix(strings.Repeat("?, ", len(t.cols)), ", ") + ")"
	rowTables.Store(typ, t)
	return t
}

// tabler is a row type: it names its table.
type tabler interface{ TableName() string }

// dest returns scan destinations for the columns of the row ptr points
// to. Text and integer columns may be NULL in rows written before the
// column existed; they read as "" and 0.
func (t *rowTable) dest(ptr any) []any {
	v := reflect.ValueOf(ptr).Elem()
	out := make([]any, len(t.fields))
	for i, idx := range t.fields {
		switch p := v.FieldByIndex(idx).Addr().Interface().(type) {
		case *string:
			out[i] = (*nullString)(p)
		case *int:
			out[i] = (*nullInt)(p)
		default:
			out[i] = p
		}
	}
	return out
}

// args returns the values of the row's columns, for an INSERT.
func (t *rowTable) args(ptr any, into []any) []any {
	v := reflect.ValueOf(ptr).Elem()
	for _, idx := range t.fields {
		into = append(into, v.FieldByIndex(idx).Interface())
	}
	return into
}

type nullString string

func (n *nullString) Scan(v any) error {
	var s sql.NullString
	err := s.Scan(v)
	*n = nullString(s.String)
	return err
}

type nullInt int

func (n *nullInt) Scan(v any) error {
	var i sql.NullInt64
	err := i.Scan(v)
	*n = nullInt(i.Int64)
	return err
}

// queryRows runs a SELECT of the row type's columns (after the column
// list, the rest of the statement: "WHERE id = ?") on db's connection and
// calls each for every row scanned into a fresh row.
func queryRows[R any, PR interface {
	*R
	tabler
}](ctx context.Context, db *gorm.DB, rest string, args []any, each func(*R)) error {
	t := tableOf(PR(new(R)))
	q := "SELECT " + t.list + " FROM " + t.name + " " + rest
	rows, err := db.Statement.ConnPool.QueryContext(ctx, bindFor(db.Dialector.Name(), q), args...)
	if err != nil {
		return mapErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		r := new(R)
		if err := rows.Scan(t.dest(r)...); err != nil {
			return mapErr(err)
		}
		each(r)
	}
	return mapErr(rows.Err())
}

// getRow reads the row whose primary key is id; ErrNotFound if none.
func getRow[R any, PR interface {
	*R
	tabler
}](ctx context.Context, db *gorm.DB, id string) (*R, error) {
	var out *R
	err := queryRows[R, PR](ctx, db, "WHERE id = ?", []any{id}, func(r *R) { out = r })
	if err == nil && out == nil {
		err = ErrNotFound
	}
	return out, err
}

// insertRows writes rows as one multi-row INSERT on tx's connection.
func insertRows[R any, PR interface {
	*R
	tabler
}](ctx context.Context, tx *gorm.DB, rows []R) error {
	if len(rows) == 0 {
		return nil
	}
	t := tableOf(PR(new(R)))
	var b strings.Builder
	b.WriteString("INSERT INTO " + t.name + " (" + t.list + ") VALUES ")
	args := make([]any, 0, len(rows)*len(t.cols))
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(t.marks)
		args = t.args(&rows[i], args)
	}
	_, err := tx.Statement.ConnPool.ExecContext(ctx, bindFor(tx.Dialector.Name(), b.String()), args...)
	return mapErr(err)
}

// pgQueries caches the $n spelling of each generated statement.
var pgQueries sync.Map // string -> string

// bindFor spells query, written with "?" placeholders, for the engine:
// unchanged for SQLite, with $1, $2, ... for Postgres (no generated
// statement has a "?" inside a string literal).
func bindFor(engine, query string) string {
	if engine != enginePostgres {
		return query
	}
	if q, ok := pgQueries.Load(query); ok {
		return q.(string)
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	pgQueries.Store(query, b.String())
	return b.String()
}
