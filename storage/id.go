package storage

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"time"
)

// idEncoding is base32hex in lower case: its alphabet sorts in the same
// order as the bytes it encodes, so IDs sort by creation time.
var idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// NewID returns a 26-character, URL-safe, time-ordered random ID: 6 bytes
// of milliseconds since the epoch, then 10 random bytes. Time order lets
// lists page by ID (keyset paging) instead of OFFSET.
func NewID() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	_, _ = rand.Read(b[6:])
	return idEncoding.EncodeToString(b[:])
}
