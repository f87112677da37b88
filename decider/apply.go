package decider

import (
	"errors"
	"slices"
	"strconv"

	"github.com/parti-io/parti/events"
)

// OutcomeKind says what Apply did with a record.
type OutcomeKind uint8

// Outcome kinds.
const (
	// Applied: the record changed (or confirmed) the state.
	Applied OutcomeKind = iota + 1
	// Ignored: a well-formed event that did not apply at its position.
	Ignored
	// Rejected: a decision invalid at its position (recorded in the state).
	Rejected
	// Skipped: garbage (undecodable, unknown type, not a log event).
	Skipped
	// Newer: a well-formed record of a newer protocol; the fold cannot go on
	// meaningfully and a member stops acting.
	Newer
	// Partial: one part of a multi-part event, held until the last part.
	Partial
)

func (k OutcomeKind) String() string {
	return [...]string{"?", "applied", "ignored", "rejected", "skipped", "newer", "partial"}[k]
}

// Outcome is what Apply did and why. Reasons are constant strings so Apply
// does not allocate for them.
type Outcome struct {
	Kind   OutcomeKind
	Reason string
}

func applied() Outcome              { return Outcome{Kind: Applied} }
func ignored(reason string) Outcome { return Outcome{Kind: Ignored, Reason: reason} }
func skipped(reason string) Outcome { return Outcome{Kind: Skipped, Reason: reason} }

// WorkerPrefix names the slots that claims without an ID are granted:
// worker-0, worker-1, ...
const WorkerPrefix = "worker-"

// Apply folds one log record into s, mutating it. It reads no clock and never
// compares timestamps: replaying the same records gives the same state.
//
// The caller must pass records of the group's log subject only: Apply does
// not look at the subject, and a record of another subject would advance
// LastSeq and make the next decision's fence look stale. A record with a
// sequence at or below s.LastSeq is ignored (a duplicate delivery); one
// without a sequence is skipped.
//
// Apply allocates nothing for a small record such as a one-partition release.
func Apply(s *State, r events.Record) Outcome {
	if r.Seq == 0 {
		// Every stored record has a sequence; one without is not from a
		// stream and would hand out fencing token 0.
		s.Counters.Skipped++
		return skipped("record without a sequence")
	}
	if r.Seq <= s.LastSeq {
		s.Counters.Ignored++
		return ignored("sequence already folded")
	}
	s.prevSeq = s.LastSeq
	s.LastSeq = r.Seq
	out := apply(s, r)
	switch out.Kind {
	case Applied, Partial:
		s.Counters.Applied++
	case Ignored:
		s.Counters.Ignored++
	case Skipped:
		s.Counters.Skipped++
	case Rejected:
		s.Counters.Rejected++
	}
	return out
}

func apply(s *State, r events.Record) Outcome {
	if r.Event == nil {
		if errors.Is(r.Err, events.ErrNewerVersion) {
			// An envelope of a version this build does not speak is junk
			// like any other (DESIGN rule 8): one stray message must not
			// stop a fleet. Only a valid version-set event does
			// (applyVersion); a group that really moved on wrote one,
			// at the old version, before its first newer envelope.
			return skipped("record of a protocol version this build does not speak")
		}
		return skipped("undecodable")
	}
	if s.partial != nil {
		if out, done := s.continuePartial(r); done {
			return out
		}
	}
	switch e := r.Event.(type) {
	case *events.ProtocolVersionSet:
		return s.applyVersion(r.Seq, e)
	case *events.MemberClaimed:
		return s.applyClaim(r.Seq, e)
	case *events.MemberLeft:
		return s.applyLeft(r.Seq, e)
	case *events.MemberClosing:
		return s.applyClosing(r.Seq, e)
	case *events.GraceEnded:
		m := s.Incarnation(e.Member, e.Incarnation)
		if m == nil || !m.Closing {
			return ignored("grace end for an incarnation that is not closing")
		}
		s.remove(r.Seq, m)
		return applied()
	case *events.MemberRemoved:
		m := s.Incarnation(e.Member, e.Incarnation)
		if m == nil {
			return ignored("removal of an incarnation that is not a member")
		}
		s.remove(r.Seq, m)
		return applied()
	case *events.PartitionsDeclared:
		return s.applyDeclared(r.Seq, e)
	case *events.WindowClosed:
		if !s.Window {
			return ignored("no window open")
		}
		s.Window = false
		s.WindowReason = ""
		s.WindowSince = 0
		return applied()
	case *events.AssignmentDecided:
		return s.applyDecision(r.Seq, e)
	case *events.PartitionsReleased:
		return s.applyReleased(r.Seq, e)
	case *events.OperatorAction:
		return s.applyOperator(r.Seq, e)
	case *events.Genesis:
		return s.applyGenesis(r.Seq, e)
	}
	return skipped("not a log event")
}

func (s *State) applyVersion(seq uint64, e *events.ProtocolVersionSet) Outcome {
	if e.Version == 0 {
		return ignored("protocol version out of range")
	}
	if e.Version <= s.Protocol {
		return ignored("protocol version cannot go down")
	}
	live := 0
	for _, id := range s.Order {
		if m := s.Members[id]; m.Live() {
			live++
			if maxProtocol(m.MaxProtocol) < e.Version {
				return ignored("a live member does not support the version")
			}
		}
	}
	if live == 0 {
		return ignored("protocol version set with no live member")
	}
	s.Protocol = e.Version
	if e.Version > events.MaxVersion {
		// Valid at its position, and above what this build speaks: the
		// group moved on. A member of this build stops acting (rule 8).
		if s.NewerVersionAt == 0 {
			s.NewerVersionAt = seq
		}
		return Outcome{Kind: Newer, Reason: "the group's protocol version is newer than this build's"}
	}
	return applied()
}

// maxProtocol is a claim's highest protocol version: claims written before
// the field existed (0) speak version 1.
func maxProtocol(v uint16) uint16 { return max(v, 1) }

func (s *State) applyClaim(seq uint64, e *events.MemberClaimed) Outcome {
	if e.Nonce == "" {
		return ignored("claim without nonce")
	}
	if e.ID != "" && events.ValidID(e.ID) != nil {
		return ignored("claim of an invalid ID")
	}
	if maxProtocol(e.MaxProtocol) < max(s.Protocol, 1) {
		return ignored("claim of a build that does not speak the group's protocol version")
	}
	if s.GrantedTo(e.Nonce) != nil {
		return ignored("nonce already granted")
	}
	if _, spent := s.Spent[e.Nonce]; spent {
		return ignored("nonce of a past incarnation")
	}
	for _, c := range s.Pending {
		if c.Nonce == e.Nonce {
			return ignored("nonce already waiting")
		}
	}
	c := PendingClaim{ID: e.ID, Nonce: e.Nonce, Seq: seq, MaxProtocol: e.MaxProtocol, Labels: e.Labels, Capacity: e.Capacity}
	if events.ValidLabels(e.Labels) != nil || e.Capacity > events.MaxCapacity {
		// Malformed placement fields are dropped, not the claim: a build
		// that predates them grants it too, so the folds agree.
		c.Labels, c.Capacity = nil, 0
	}
	if c.ID == "" {
		c.ID = s.freeSlot()
	}
	if m := s.Members[c.ID]; m != nil && !m.Closing {
		s.Pending = append(s.Pending, c)
		return applied()
	}
	s.grant(seq, c)
	return applied()
}

// freeSlot returns the lowest worker slot not held by a live or leaving member
// and not waited for by a pending claim. A closing incarnation's slot counts as
// free: the new process takes its partitions over.
//
// It builds each candidate in a stack buffer and allocates only the ID it
// returns: a claim without an ID probes every slot below the free one.
func (s *State) freeSlot() string {
	var buf [len(WorkerPrefix) + 20]byte
	for k := 0; ; k++ {
		id := strconv.AppendInt(append(buf[:0], WorkerPrefix...), int64(k), 10)
		if m := s.Members[string(id)]; m != nil && !m.Closing {
			continue
		}
		waiting := false
		for _, c := range s.Pending {
			if c.ID == string(id) {
				waiting = true
				break
			}
		}
		if !waiting {
			return string(id)
		}
	}
}

// grant makes claim c an incarnation at log position seq. A closing
// incarnation of the same ID hands its partitions to the new one: zero moves.
func (s *State) grant(seq uint64, c PendingClaim) {
	inc := s.LastInc[c.ID] + 1
	s.LastInc[c.ID] = inc
	if s.Spent == nil {
		s.Spent = map[string]uint64{}
	}
	s.Spent[c.Nonce] = seq
	planned := true
	nm := &Member{ID: c.ID, Incarnation: inc, Nonce: c.Nonce, JoinSeq: seq, MaxProtocol: c.MaxProtocol, Labels: c.Labels, Capacity: c.Capacity}
	if old := s.Members[c.ID]; old != nil {
		// Only a closing incarnation can be superseded (callers check): the
		// new one takes its partitions, moves and lists over.
		planned = false
		s.ownL.each(old.ownHead, func(p uint32) {
			o := &s.Owners[p]
			o.Inc, o.Token = inc, seq
		})
		s.tgtL.each(old.tgtHead, func(p uint32) { s.Owners[p].TargetInc = inc })
		nm.owns, nm.targets, nm.ownHead, nm.tgtHead = old.owns, old.targets, old.ownHead, old.tgtHead
		s.dropOrder(old.ID)
	}
	s.Members[c.ID] = nm
	s.Order = append(s.Order, c.ID)
	if planned && !s.Window {
		s.Window = true
		s.WindowSince = seq
		if s.Generation == 0 {
			s.WindowReason = "cold-start"
		} else {
			s.WindowReason = "scale"
		}
	}
}

func (s *State) dropOrder(id string) {
	if i := slices.Index(s.Order, id); i >= 0 {
		s.Order = slices.Delete(s.Order, i, i+1)
	}
}

// remove takes incarnation m out of the group at position seq: moves away from
// it complete, its other partitions become unowned, moves to it are
// cancelled, and the oldest claim waiting for its ID is granted.
func (s *State) remove(seq uint64, m *Member) {
	s.ownL.each(m.ownHead, func(p uint32) {
		if s.Owners[p].Target != "" {
			s.complete(p, seq, m)
		} else {
			s.disown(p, m)
		}
	})
	s.tgtL.each(m.tgtHead, func(p uint32) { s.retarget(p, nil) })
	delete(s.Members, m.ID)
	s.dropOrder(m.ID)
	s.grantWaiting(seq, m.ID)
}

// grantWaiting grants the oldest claim waiting for id, if the ID is free.
func (s *State) grantWaiting(seq uint64, id string) {
	if m := s.Members[id]; m != nil && !m.Closing {
		return
	}
	for i, c := range s.Pending {
		if c.ID == id {
			s.Pending = slices.Delete(s.Pending, i, i+1)
			s.grant(seq, c)
			return
		}
	}
}

func (s *State) applyLeft(seq uint64, e *events.MemberLeft) Outcome {
	m := s.Incarnation(e.Member, e.Incarnation)
	if m == nil || m.Leaving {
		return ignored("leave of an incarnation that is not live")
	}
	m.Leaving = true
	m.Closing = false
	s.cancelMovesTo(m)
	s.finishLeave(seq, m)
	return applied()
}

// ownsAny reports whether m owns at least one partition (stopping at the
// first): Owned without the slice.
func (s *State) ownsAny(m *Member) bool { return m.owns > 0 }

// finishLeave removes a leaving member once it owns nothing.
func (s *State) finishLeave(seq uint64, m *Member) {
	if s.ownsAny(m) {
		return
	}
	delete(s.Members, m.ID)
	s.dropOrder(m.ID)
	s.grantWaiting(seq, m.ID)
}

func (s *State) cancelMovesTo(m *Member) {
	s.tgtL.each(m.tgtHead, func(p uint32) { s.retarget(p, nil) })
}

func (s *State) applyClosing(seq uint64, e *events.MemberClosing) Outcome {
	m := s.Incarnation(e.Member, e.Incarnation)
	if m == nil || !m.Live() {
		return ignored("close of an incarnation that is not live")
	}
	m.Closing = true
	s.cancelMovesTo(m)
	if !s.ownsAny(m) {
		// Nothing to keep for a restart: it is simply gone.
		delete(s.Members, m.ID)
		s.dropOrder(m.ID)
	}
	s.grantWaiting(seq, m.ID)
	return applied()
}

func (s *State) applyReleased(seq uint64, e *events.PartitionsReleased) Outcome {
	m := s.Incarnation(e.Member, e.Incarnation)
	if m == nil {
		return ignored("release by an incarnation that is not a member")
	}
	n := 0
	for _, rel := range e.Released {
		if uint64(rel.Partition) >= uint64(len(s.Owners)) {
			continue
		}
		o := &s.Owners[rel.Partition]
		if o.Owner != e.Member || o.Inc != e.Incarnation || o.Token != rel.Token {
			continue
		}
		n++
		if o.Target != "" {
			s.complete(rel.Partition, seq, m)
		} else {
			s.disown(rel.Partition, m)
		}
	}
	if m.Leaving {
		s.finishLeave(seq, m)
	}
	if n == 0 {
		return ignored("release matched no ownership")
	}
	return applied()
}

func (s *State) applyDeclared(seq uint64, e *events.PartitionsDeclared) Outcome {
	parts := max(e.Parts, 1)
	if e.Part != 0 {
		return ignored("declaration part out of order")
	}
	if parts == 1 {
		return s.declare(seq, e)
	}
	// Check at the first part what the whole would be checked for, so that
	// a lone part published by someone else starts nothing.
	if len(s.Order) == 0 || !s.isLeaderName(e.By) {
		return ignored("declaration not by the leader")
	}
	if e.Version <= s.DeclVersion {
		return ignored("declaration version not newer")
	}
	d := *e
	d.IDs = slices.Clone(e.IDs)
	d.Weights = slices.Clone(e.Weights)
	d.ClassOf = slices.Clone(e.ClassOf)
	s.partial = &partial{firstSeq: seq, decl: &d, next: 1, parts: parts}
	return Outcome{Kind: Partial}
}

// continuePartial feeds r to a multi-part event in progress. done is false
// when r is not a continuation: the partial event is then abandoned (it was
// interleaved, so it was not one atomic batch) and r is applied normally.
func (s *State) continuePartial(r events.Record) (Outcome, bool) {
	p := s.partial
	switch e := r.Event.(type) {
	case *events.PartitionsDeclared:
		if p.decl != nil && e.Part == p.next && e.Version == p.decl.Version && max(e.Parts, 1) == p.parts {
			p.decl.IDs = append(p.decl.IDs, e.IDs...)
			p.decl.Weights = append(p.decl.Weights, e.Weights...)
			p.decl.ClassOf = append(p.decl.ClassOf, e.ClassOf...)
			p.next++
			if p.next < p.parts {
				return Outcome{Kind: Partial}, true
			}
			s.partial = nil
			return s.declare(p.firstSeq, p.decl), true
		}
	case *events.Genesis:
		if g := p.genesis; g != nil && e.Part == p.next && max(e.Parts, 1) == p.parts && e.UpTo == g.UpTo && e.Hash == g.Hash {
			g.State = append(g.State, e.State...)
			p.next++
			if p.next < p.parts {
				return Outcome{Kind: Partial}, true
			}
			s.partial = nil
			return s.genesis(p.firstSeq, r.Seq, g), true
		}
	case *events.AssignmentDecided:
		if p.decision != nil && e.Part == p.next && e.Generation == p.decision.Generation && max(e.Parts, 1) == p.parts {
			p.decision.Moves = append(p.decision.Moves, e.Moves...)
			p.next++
			if p.next < p.parts {
				return Outcome{Kind: Partial}, true
			}
			s.partial = nil
			return s.validateAndApplyDecision(p.firstSeq, p.decision), true
		}
	}
	s.partial = nil
	s.Counters.Ignored++
	return Outcome{}, false
}

func (s *State) declare(seq uint64, e *events.PartitionsDeclared) Outcome {
	if len(s.Order) == 0 || !s.isLeaderName(e.By) {
		return ignored("declaration not by the leader")
	}
	if e.Version <= s.DeclVersion {
		return ignored("declaration version not newer")
	}
	if len(e.Weights) != 0 && len(e.Weights) != len(e.IDs) {
		return ignored("declaration weights do not match IDs")
	}

	for i, id := range e.IDs {
		if events.ValidPartitionID(id) != nil {
			return ignored("declaration has an invalid partition ID")
		}
		if len(e.Weights) != 0 && e.Weights[i] == 0 {
			return ignored("declaration has a zero weight")
		}
	}
	ids := slices.Clone(e.IDs)
	seen, dup := newPartIndex(ids)
	if dup >= 0 {
		return ignored("declaration has a duplicate partition ID")
	}
	owners := make([]Ownership, len(e.IDs))
	for i, id := range e.IDs {
		if j, ok := s.index.lookup(id); ok {
			o := s.Owners[j]
			// A move in flight survives the re-declaration. A partition
			// that changes index gets a new token: releases are unfenced
			// and name partitions by index and token, so one computed on
			// the old layout and folded after this declaration would
			// otherwise release whatever partition of the same owner, with
			// the same token, sits at that index now.
			if o.Owner != "" && j != uint32(i) {
				o.Token = seq
			}
			owners[i] = o
		} else if o, ok := s.Retired[id]; ok && s.Incarnation(o.Owner, o.Inc) != nil {
			// Declared again: back to the owner it was dropped from (with a
			// new token, as it has a new index).
			o.Token = seq
			owners[i] = o
		}
	}
	// Owned partitions this declaration drops are retired under their owner
	// (see State.Retired); earlier entries stay while their owner does.
	var retired map[string]Ownership
	keep := func(id string, o Ownership) {
		if _, declared := seen.lookup(id); declared || o.Owner == "" || s.Incarnation(o.Owner, o.Inc) == nil {
			return
		}
		if retired == nil {
			retired = map[string]Ownership{}
		}
		retired[id] = Ownership{Owner: o.Owner, Inc: o.Inc, Token: o.Token}
	}
	//parti:unordered builds a map; retired IDs are never declared, so no key is kept twice
	for id, o := range s.Retired {
		keep(id, o)
	}
	for j, id := range s.Partitions {
		keep(id, s.Owners[j])
	}
	s.Retired = retired
	s.DeclVersion = e.Version
	s.Partitions = ids
	if len(e.Weights) != 0 {
		s.Weights = slices.Clone(e.Weights)
	} else {
		s.Weights = nil
	}
	if e.Strategy != "" {
		s.Strategy = e.Strategy
	}
	s.Classes, s.ClassOf = nil, nil
	// Malformed classes are dropped (every partition unconstrained), not
	// the declaration: a build that predates them applies it too.
	if len(e.ClassOf) != 0 && events.ValidPlacement(e.Classes, e.ClassOf, len(e.IDs)) == nil {
		s.Classes = slices.Clone(e.Classes)
		s.ClassOf = slices.Clone(e.ClassOf)
	}
	s.Owners = owners
	s.index = seen
	s.reindex()
	// Leaving members whose partitions were dropped may now be done.
	for _, id := range slices.Clone(s.Order) {
		if m := s.Members[id]; m != nil && m.Leaving {
			s.finishLeave(seq, m)
		}
	}
	return applied()
}

// isLeaderName reports whether by names the current leader (ID only: the
// declaring leader is checked by ID; decisions are checked by incarnation).
func (s *State) isLeaderName(by string) bool {
	l, ok := s.Leader()
	return ok && l.ID == by
}

func (s *State) applyOperator(seq uint64, e *events.OperatorAction) Outcome {
	switch e.Action {
	case events.OpPause:
		s.Paused = true
		return applied()
	case events.OpResume:
		s.Paused = false
		return applied()
	case events.OpMove:
		return s.operatorMove(seq, e)
	}
	m := s.Members[e.Member]
	if m == nil {
		return ignored("operator action on an unknown member")
	}
	switch e.Action {
	case events.OpDrain:
		m.Draining = true
		s.cancelMovesTo(m)
	case events.OpCordon:
		m.Cordoned = true
		s.cancelMovesTo(m)
	case events.OpUncordon:
		m.Cordoned, m.Draining = false, false
	case events.OpForceExpire:
		if e.Incarnation == 0 {
			// A record written before force-expire named the incarnation:
			// it folds as it always did.
			s.remove(seq, m)
			break
		}
		if m.Incarnation != e.Incarnation {
			return ignored("force-expire of an incarnation that is not a member")
		}
		if m.Forced != 0 {
			return ignored("force-expire of an incarnation already forced")
		}
		m.Forced = seq
		s.cancelMovesTo(m)
	default:
		return ignored("unknown operator action")
	}
	return applied()
}

// operatorMove moves one partition to a member: at once when it is unowned,
// through the owner's release otherwise.
func (s *State) operatorMove(seq uint64, e *events.OperatorAction) Outcome {
	i, ok := s.index.lookup(e.Partition)
	if !ok {
		return ignored("operator move of an unknown partition")
	}
	t := s.Members[e.Target]
	if t == nil || !t.Eligible() {
		return ignored("operator move to an ineligible member")
	}
	if !hasLabels(t.Labels, s.Class(int(i)).Require) {
		// A constraint is a rule of the group, not a preference: an
		// operator cannot break it either.
		return ignored("operator move to a member without the partition's required labels")
	}
	o := &s.Owners[i]
	switch {
	case o.Owner == t.ID && o.Inc == t.Incarnation:
		s.retarget(i, nil)
	case o.Owner == "":
		s.own(i, t, seq)
	default:
		s.retarget(i, t)
	}
	return applied()
}

// hasLabels reports whether labels include every one of want.
func hasLabels(labels, want []string) bool {
	for _, w := range want {
		if !slices.Contains(labels, w) {
			return false
		}
	}
	return true
}
