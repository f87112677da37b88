package replay

import (
	"context"
	"fmt"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// GenesisReport describes the genesis a migrated group's log starts with
// (events.Genesis): where it came from, whether the fold applied it, and,
// when the audit was given the previous generation's history
// (AuditOptions.Previous), whether it carries exactly that history's fold.
type GenesisReport struct {
	// Seq and LastSeq are the sequences of its first and last part.
	Seq     uint64 `json:"seq"`
	LastSeq uint64 `json:"last_seq"`
	Parts   int    `json:"parts"`
	// FromGroup, FromStream and UpTo name the old log and its last
	// sequence carried; Hash is the carried state's hash.
	FromGroup  string `json:"from_group"`
	FromStream string `json:"from_stream"`
	UpTo       uint64 `json:"up_to"`
	Hash       string `json:"hash"`
	By         string `json:"by,omitempty"`
	Note       string `json:"note,omitempty"`
	// Applied is true when the fold restored the state (its hash and
	// invariants checked); Reason says why not otherwise.
	Applied bool   `json:"applied"`
	Reason  string `json:"reason,omitempty"`
	// Previous is the previous generation's history, when it was given;
	// PreviousHash the hash of its fold up to UpTo, PreviousEnd its last
	// log sequence, and Matches whether PreviousHash is Hash.
	Previous     string `json:"previous,omitempty"`
	PreviousHash string `json:"previous_hash,omitempty"`
	PreviousEnd  uint64 `json:"previous_end,omitempty"`
	Matches      bool   `json:"matches,omitempty"`
}

// genesisPart notes the first part of a genesis (before it is folded).
func (a *auditor) genesisPart(r *events.Record, e *events.Genesis) {
	if e.Part != 0 || a.rep.Genesis != nil {
		return
	}
	a.rep.Genesis = &GenesisReport{Seq: r.Seq, LastSeq: r.Seq, Parts: max(e.Parts, 1), FromGroup: e.FromGroup,
		FromStream: e.FromStream, UpTo: e.UpTo, Hash: e.Hash, By: e.By, Note: e.Note}
}

// genesisStart takes in the state a genesis restored: the audit's view of
// every partition starts from it, owned partitions with the tokens they
// carry, the others unowned from here.
func (a *auditor) genesisStart(r *events.Record) {
	if g := a.rep.Genesis; g != nil && !g.Applied {
		g.Applied, g.LastSeq = true, r.Seq
	}
	a.redeclare(r) // sizes every slice to the carried set, all unowned
	s := a.f.s
	for p := range a.ids {
		o := s.Owners[p]
		a.relist(uint32(p), a.shadow[p], o)
		a.shadow[p] = o
		if o.Owner != "" {
			a.lastTok[p] = o.Token
		}
	}
}

// genesisRefused reports a genesis the fold did not apply.
func (a *auditor) genesisRefused(r *events.Record, e *events.Genesis, out decider.Outcome) {
	if g := a.rep.Genesis; g != nil && g.Seq <= r.Seq && g.Hash == e.Hash && !g.Applied && g.Reason == "" {
		g.Reason = out.Reason
	}
	a.violate(Violation{Kind: ViolationGenesis, Seq: r.Seq, Time: r.Time,
		Message: fmt.Sprintf("a genesis from group %s up to seq %d was not applied: %s", e.FromGroup, e.UpTo, out.Reason)})
}

// checkPrevious refolds the previous generation up to the genesis's
// sequence and compares the state's hash with the genesis's; it also
// checks that the old log ends there.
func (a *auditor) checkPrevious(ctx context.Context, prev Source) error {
	g := a.rep.Genesis
	if g == nil {
		a.violate(Violation{Kind: ViolationGenesis,
			Message: fmt.Sprintf("the history does not start with a genesis, so it was not migrated from %s", prev)})
		return nil
	}
	g.Previous = prev.String()
	bad := func(format string, args ...any) {
		a.violate(Violation{Kind: ViolationGenesis, Seq: g.Seq, Message: fmt.Sprintf(format, args...)})
	}
	if got := prev.Subjects().Group; got != g.FromGroup {
		bad("the genesis comes from group %s, the previous history given is of group %s", g.FromGroup, got)
		return nil
	}
	f, caps, err := foldTo(ctx, prev, AtSeq(g.UpTo), Point{})
	if err != nil {
		return err
	}
	g.PreviousEnd = f.last.Seq
	at := caps[0]
	if at.pos.Seq != g.UpTo {
		bad("the genesis carries the old log up to seq %d, but the old log has no record there (its records end at %d up to that point)", g.UpTo, at.pos.Seq)
		return nil
	}
	_, hash, err := decider.Snapshot(at.state)
	if err != nil {
		bad("the old log's fold up to seq %d cannot be encoded: %v", g.UpTo, err)
		return nil
	}
	g.PreviousHash = hash
	g.Matches = hash == g.Hash
	if !g.Matches {
		bad("the genesis carries a state with hash %s, but the old log's fold up to seq %d hashes to %s: it is not the old generation's state", g.Hash, g.UpTo, hash)
	}
	if f.last.Seq > g.UpTo {
		bad("the old log went on after the genesis (seq %d to %d): those records are not in the new generation", g.UpTo+1, f.last.Seq)
	}
	return nil
}
