package decider

import (
	"fmt"
	"slices"

	"github.com/parti-io/parti/events"
)

// applyGenesis starts folding a new-generation log from the state its
// genesis carries (events.Genesis, DESIGN rule 7). A genesis applies only as
// the very first record of a fold: anywhere else it is ignored, so that no
// record can replace a group's state in the middle of its history. A large
// genesis arrives in parts (one atomic batch) and applies at the last one.
func (s *State) applyGenesis(seq uint64, e *events.Genesis) Outcome {
	if e.Part != 0 {
		return ignored("genesis part out of order")
	}
	if s.prevSeq != 0 {
		return ignored("genesis after the start of the log")
	}
	parts := max(e.Parts, 1)
	if parts == 1 {
		return s.genesis(seq, seq, e)
	}
	g := *e
	g.State = slices.Clone(e.State)
	s.partial = &partial{firstSeq: seq, genesis: &g, next: 1, parts: parts}
	return Outcome{Kind: Partial}
}

// genesis replaces the (empty) state with the state g carries, once its hash
// and invariants check: the genesis spans log sequences first to last. The
// carried state must be folded exactly up to g.UpTo, which must come before
// the genesis, so that every fencing token issued from here on is higher than
// every token of the old generation.
func (s *State) genesis(first, last uint64, g *events.Genesis) Outcome {
	if g.UpTo == 0 || g.UpTo >= first {
		return ignored("genesis does not follow the log it carries")
	}
	if g.Hash == "" {
		return ignored("genesis without a hash")
	}
	st, err := Restore(g.State, g.Hash)
	if err != nil {
		return ignored("genesis state does not verify")
	}
	if st.LastSeq != g.UpTo {
		return ignored("genesis state is not the fold up to its sequence")
	}
	*s = *st
	s.LastSeq = last
	return applied()
}

// NewGenesis returns the genesis of a new generation that starts from s, the
// fold of group from's log (on stream fromStream) up to s.LastSeq: s's
// canonical encoding (Snapshot) cut into parts of at most chunkBytes bytes,
// to be appended as one atomic batch, first on the new group's empty log. A
// single part has Parts 0. It fails on an empty state, on a chunk size below
// 1, and with ErrBusy in the middle of a multi-part event.
func NewGenesis(s *State, from, fromStream string, chunkBytes int, by, note string) ([]*events.Genesis, error) {
	if s.LastSeq == 0 {
		return nil, fmt.Errorf("decider: genesis: the state has folded nothing")
	}
	if chunkBytes < 1 {
		return nil, fmt.Errorf("decider: genesis: chunk size %d", chunkBytes)
	}
	data, hash, err := Snapshot(s)
	if err != nil {
		return nil, err
	}
	parts := max(1, (len(data)+chunkBytes-1)/chunkBytes)
	out := make([]*events.Genesis, parts)
	for p := range parts {
		out[p] = &events.Genesis{FromGroup: from, FromStream: fromStream, UpTo: s.LastSeq, Hash: hash,
			Part: p, Parts: parts, State: data[p*chunkBytes : min(len(data), (p+1)*chunkBytes)], By: by, Note: note}
	}
	if parts == 1 {
		out[0].Parts = 0
	}
	return out, nil
}
