package auditchain

import (
	"context"
	"crypto/hmac"
	"fmt"
)

// Kinds of Problem.
const (
	Changed  = "changed"  // a sealed entry's fields differ from its digest
	Deleted  = "deleted"  // a sealed entry is gone
	Inserted = "inserted" // an entry sits in a sealed range without being listed
	Broken   = "seal"     // a seal itself is missing, rewritten or unkeyed
)

// Problem is one way the log differs from its seals.
type Problem struct {
	Kind    string
	Seal    int64
	EntryID string // "" for seal problems
	Detail  string
}

func (p Problem) String() string {
	switch p.Kind {
	case Changed:
		return fmt.Sprintf("entry %s was changed after seal %d sealed it", p.EntryID, p.Seal)
	case Deleted:
		return fmt.Sprintf("entry %s was deleted after seal %d sealed it", p.EntryID, p.Seal)
	case Inserted:
		return fmt.Sprintf("entry %s was inserted into the range of seal %d after it was sealed", p.EntryID, p.Seal)
	}
	return fmt.Sprintf("seal %d: %s", p.Seal, p.Detail)
}

// Options of Verify.
type Options struct {
	// Key checks each seal's MAC; nil leaves MACs unchecked.
	Key []byte
	// SaltMissing says the caller has the passphrase but the key's salt
	// is gone from the settings: every keyed seal is then a problem.
	SaltMissing bool
	// Anchors are seal hashes recorded outside the database, by Seq.
	Anchors map[int64]string
}

// Report is what Verify found.
type Report struct {
	Seals       int
	Covered     int64 // entries listed by the seals
	Last        *Seal // the newest seal, without Digests; nil when none
	Unsealed    int64 // entries after the newest seal's range: not yet sealed, not a failure
	Keyed       int   // seals that carry a MAC
	MACsChecked bool
	Problems    int
	First       *Problem // the first problem in chain order
}

// OK reports an intact chain.
func (r *Report) OK() bool { return r.Problems == 0 }

func (r *Report) add(p Problem) {
	r.Problems++
	if r.First == nil {
		r.First = &p
	}
}

const (
	sealPage  = 16
	entryPage = 1000
)

// Verify recomputes the chain from the first seal and compares every
// sealed range of the log with its seal's list, in order, so that
// Report.First is the first thing that was done to the log. Entries are
// compared in ID order as the database returns them; IDs made by
// acme.NewID sort the same in Go and under any collation.
func Verify(ctx context.Context, r Reader, o Options) (Report, error) {
	var rep Report
	rep.MACsChecked = o.Key != nil
	var (
		prevSeq  int64
		prevHash string
		prevUpto string
		keyed    bool
	)
	for {
		seals, err := r.AuditSeals(ctx, prevSeq, sealPage)
		if err != nil {
			return rep, err
		}
		for _, s := range seals {
			if s.Seq != prevSeq+1 {
				rep.add(Problem{Kind: Broken, Seal: prevSeq + 1, Detail: fmt.Sprintf("missing: seals %d to %d were deleted", prevSeq+1, s.Seq-1)})
			}
			checkSeal(&rep, s, prevHash, prevUpto, o, keyed)
			keyed = keyed || s.MAC != ""
			if err := checkEntries(ctx, r, &rep, s); err != nil {
				return rep, err
			}
			rep.Seals++
			if s.MAC != "" {
				rep.Keyed++
			}
			prevSeq, prevHash, prevUpto = s.Seq, s.Hash, s.Upto
			last := s
			last.Digests = ""
			rep.Last = &last
		}
		if len(seals) < sealPage {
			break
		}
	}
	// The MAC check above only bites on seals that carry a MAC, so
	// without this rule clearing the mac column (and recomputing the
	// hashes, which need no key) would turn a keyed chain back into a
	// plain one that passes. A keyed sealer never leaves the newest seal
	// unkeyed (it seals an empty range to key an unkeyed chain), so a
	// caller holding the passphrase can demand that it carries one.
	if (o.Key != nil || o.SaltMissing) && rep.Last != nil && rep.Last.MAC == "" {
		rep.add(Problem{Kind: Broken, Seal: rep.Last.Seq, Detail: "it carries no MAC although CERTMINT_CA_PASSPHRASE was given: " +
			"the MACs were stripped, or no replica with the passphrase has sealed since (verify without it checks the plain chain)"})
	}
	for seq := range o.Anchors {
		if seq > prevSeq {
			rep.add(Problem{Kind: Broken, Seal: seq, Detail: fmt.Sprintf("anchored, but the chain ends at seal %d: later seals were deleted", prevSeq)})
		}
	}
	n, err := r.CountAuditEntries(ctx, prevUpto)
	if err != nil {
		return rep, err
	}
	rep.Unsealed = n
	return rep, nil
}

// checkSeal checks a seal against the chain before it. The stored hash,
// not the recomputed one, links to the next seal, so one bad seal is
// reported once rather than with every seal after it.
func checkSeal(rep *Report, s Seal, prevHash, prevUpto string, o Options, keyedBefore bool) {
	bad := func(detail string) { rep.add(Problem{Kind: Broken, Seal: s.Seq, Detail: detail}) }
	if s.After != prevUpto {
		bad(fmt.Sprintf("its range starts after %q, where the previous seal ended at %q", s.After, prevUpto))
	}
	if SealHash(s, prevHash) != s.Hash {
		bad("its hash does not match its contents and the previous seal: the seal was rewritten")
	}
	if want, ok := o.Anchors[s.Seq]; ok && want != s.Hash {
		bad(fmt.Sprintf("its hash %s is not the anchored %s", s.Hash, want))
	}
	switch {
	case s.MAC != "" && o.SaltMissing:
		bad("it carries a MAC but the seal key's salt (setting " + SaltSetting + ") is gone")
	case o.Key == nil:
	case s.MAC != "" && !hmac.Equal([]byte(s.MAC), []byte(SealMAC(o.Key, s.Hash))):
		bad("its MAC does not verify: the seal was rewritten, or sealed under another CERTMINT_CA_PASSPHRASE")
	case s.MAC == "" && keyedBefore:
		bad("it carries no MAC although earlier seals do: rewritten without the key")
	}
}

// checkEntries walks the seal's list and the log's entries in its range
// side by side, in ID order.
func checkEntries(ctx context.Context, r Reader, rep *Report, s Seal) error {
	listed, err := ParseDigests(s.Digests)
	if err != nil {
		rep.add(Problem{Kind: Broken, Seal: s.Seq, Detail: err.Error()})
		return nil
	}
	rep.Covered += int64(len(listed))
	i := 0
	after := s.After
	for {
		page, err := r.AuditEntries(ctx, after, s.Upto, entryPage)
		if err != nil {
			return err
		}
		for _, e := range page {
			for i < len(listed) && listed[i].ID < e.ID {
				rep.add(Problem{Kind: Deleted, Seal: s.Seq, EntryID: listed[i].ID})
				i++
			}
			if i < len(listed) && listed[i].ID == e.ID {
				if EntryDigest(e) != listed[i].Digest {
					rep.add(Problem{Kind: Changed, Seal: s.Seq, EntryID: e.ID})
				}
				i++
				continue
			}
			rep.add(Problem{Kind: Inserted, Seal: s.Seq, EntryID: e.ID})
		}
		if len(page) < entryPage {
			break
		}
		after = page[len(page)-1].ID
	}
	for ; i < len(listed); i++ {
		rep.add(Problem{Kind: Deleted, Seal: s.Seq, EntryID: listed[i].ID})
	}
	return nil
}
