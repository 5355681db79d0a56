package integration

import (
	"bytes"
	"crypto/sha256"
	bin "encoding/binary"
	"fmt"
	"io"
	"sort"
)

// jksEntries lists the entries of a JKS keystore of trusted certificates
// (a JDK's cacerts) as "alias date sha256(DER)", sorted. JKS writes its
// entries in the order of a java.util.Hashtable, which a load and store
// permutes, so two files with the same entries can differ in their bytes;
// this compares what each entry holds, byte for byte. It returns an error
// for a file that is not such a keystore.
func jksEntries(data []byte) ([]string, error) {
	r := bytes.NewReader(data)
	var head struct{ Magic, Version, Count uint32 }
	if err := bin.Read(r, bin.BigEndian, &head); err != nil || head.Magic != 0xFEEDFEED || head.Version != 2 {
		return nil, fmt.Errorf("not a JKS v2 keystore")
	}
	utf := func() (string, error) {
		var n uint16
		if err := bin.Read(r, bin.BigEndian, &n); err != nil {
			return "", err
		}
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return string(b), err
	}
	var out []string
	for i := uint32(0); i < head.Count; i++ {
		var tag uint32
		if err := bin.Read(r, bin.BigEndian, &tag); err != nil {
			return nil, err
		}
		if tag != 2 {
			return nil, fmt.Errorf("entry %d is not a trusted certificate (tag %d)", i, tag)
		}
		alias, err := utf()
		if err != nil {
			return nil, err
		}
		var date int64
		if err := bin.Read(r, bin.BigEndian, &date); err != nil {
			return nil, err
		}
		if _, err := utf(); err != nil { // certificate type, "X.509"
			return nil, err
		}
		var n uint32
		if err := bin.Read(r, bin.BigEndian, &n); err != nil {
			return nil, err
		}
		der := make([]byte, n)
		if _, err := io.ReadFull(r, der); err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprintf("%s %d %x", alias, date, sha256.Sum256(der)))
	}
	sort.Strings(out)
	return out, nil
}
