package acme

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"sync"
	"time"
)

// idEncoding is base32hex in lower case: its alphabet sorts in the same
// order as the bytes it encodes, so IDs sort by creation time.
var idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

var idState struct {
	sync.Mutex
	ms   uint64
	tail [10]byte
}

// NewID returns a 26-character, URL-safe, time-ordered random ID: 6 bytes
// of milliseconds since the epoch, then 10 random bytes. Time order lets
// lists page by ID (keyset paging) instead of OFFSET. Within one
// millisecond the random part is incremented instead of drawn again (as
// ULIDs do), so IDs made by one process are strictly increasing.
func NewID() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	idState.Lock()
	if ms <= idState.ms {
		ms = idState.ms
		for i := len(idState.tail) - 1; i >= 0; i-- {
			idState.tail[i]++
			if idState.tail[i] != 0 {
				break
			}
		}
	} else {
		idState.ms = ms
		_, _ = rand.Read(idState.tail[:])
		idState.tail[0] &= 0x7f // room to increment without wrapping
	}
	copy(b[6:], idState.tail[:])
	idState.Unlock()
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	return idEncoding.EncodeToString(b[:])
}

// LastIDBefore is the greatest ID that NewID can have returned for a
// moment before t: every ID made earlier sorts at or below it, every ID
// made at t or later above it. The audit sealer cuts the log there
// (internal/auditchain).
func LastIDBefore(t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli()) - 1
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	for i := 6; i < len(b); i++ {
		b[i] = 0xff
	}
	return idEncoding.EncodeToString(b[:])
}
