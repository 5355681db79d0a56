package acme

import (
	"testing"
	"time"
)

func TestLastIDBefore(t *testing.T) {
	before := NewID()
	time.Sleep(2 * time.Millisecond)
	cut := time.Now()
	bound := LastIDBefore(cut)
	time.Sleep(time.Millisecond)
	after := NewID()
	if len(bound) != len(before) {
		t.Fatalf("LastIDBefore has %d characters, IDs %d", len(bound), len(before))
	}
	if !(before <= bound && bound < after) {
		t.Fatalf("want %s <= %s < %s", before, bound, after)
	}
	if LastIDBefore(cut.Add(-time.Millisecond)) >= bound {
		t.Fatal("LastIDBefore does not grow with time")
	}
}
