package sim

import (
	"fmt"
	"strings"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// --- checks ------------------------------------------------------------------

func (w *world) check() {
	w.checkOverlap()
	if w.authDirty {
		w.authDirty = false
		if err := decider.CheckInvariants(w.auth); err != nil {
			w.fail(KindInvariant, "authoritative fold at seq %d: %v", w.auth.LastSeq, err)
		}
		w.checkPlacement()
	}
	for _, p := range w.procs {
		if !p.dead && p.stDirty {
			p.stDirty = false
			if err := decider.CheckInvariants(p.st); err != nil {
				w.fail(KindInvariant, "%s's fold at seq %d: %v", p.name(), p.st.LastSeq, err)
			}
		}
	}
	if w.step%25 == 0 {
		w.checkDigests()
	}
	if w.step%300 == 0 {
		if data, h, err := decider.Snapshot(w.auth); err == nil {
			w.snap, w.snapHash = data, h
		}
	}
	if w.step%1000 == 0 {
		w.refold()
	}
	if w.ph == phaseCalm && w.T-w.calmStart >= w.quietBound {
		w.checkLiveness()
	}
}

func (w *world) checkOverlap() {
	for i := range w.owner {
		w.owner[i], w.appOwner[i] = -1, -1
	}
	overlap := false
	for _, p := range w.procs {
		if p.dead {
			continue
		}
		for _, o := range p.belief {
			pid, ok := universeIndex[o.ID]
			if !ok {
				continue
			}
			if q := w.owner[pid]; q >= 0 {
				overlap = true
				if !w.opt.ExpectOverlap {
					w.fail(KindOverlap, "%s and %s both believe they own %s (tokens %v)", w.procs[q].name(), p.name(), o.ID, o.Token)
				}
			}
			w.owner[pid] = int32(p.n)
		}
		for pid := range p.acting {
			if !p.acting[pid].on {
				continue
			}
			if q := w.appOwner[pid]; q >= 0 {
				overlap = true
				if !w.opt.ExpectOverlap {
					w.fail(KindAppOverlap, "the applications of %s and %s both act on %s (tokens %v and %v)", w.procs[q].name(), p.name(), universe[pid], w.procs[q].acting[pid].token, p.acting[pid].token)
				}
			}
			w.appOwner[pid] = int32(p.n)
		}
	}
	if overlap {
		w.stats.Overlaps++
	}
}

// checkDigests records the authoritative state's hash at its last sequence
// and compares every member whose fold stands at a recorded sequence.
func (w *world) checkDigests() {
	if _, h, err := decider.Snapshot(w.auth); err == nil {
		w.authHash[w.auth.LastSeq] = h
	}
	for _, p := range w.procs {
		if p.dead {
			continue
		}
		want, ok := w.authHash[p.st.LastSeq]
		if !ok {
			continue
		}
		_, h, err := decider.Snapshot(p.st)
		if err != nil {
			continue
		}
		w.stats.DigestChecks++
		if h != want {
			w.fail(KindDivergence, "%s's fold at seq %d hashes %s, the authoritative fold %s", p.name(), p.st.LastSeq, h, want)
		}
	}
}

// refold folds the whole log again from scratch, and from a snapshot taken at
// a random earlier record, and compares both with the authoritative state.
func (w *world) refold() {
	_, want, err := decider.Snapshot(w.auth)
	if err != nil {
		return
	}
	w.stats.Refolds++
	log := w.st.log
	cut := w.rng.IntN(len(log) + 1)
	s := decider.New()
	var snap []byte
	var snapHash string
	for i, r := range log {
		if i == cut {
			snap, snapHash, _ = decider.Snapshot(s)
		}
		decider.Apply(s, r)
	}
	if _, h, _ := decider.Snapshot(s); h != want {
		w.fail(KindRefold, "refold from scratch of %d records hashes %s, the authoritative fold %s", len(log), h, want)
		return
	}
	if snap == nil {
		return
	}
	r, err := decider.Restore(snap, snapHash)
	if err != nil {
		w.fail(KindRefold, "restore of the snapshot at record %d: %v", cut, err)
		return
	}
	for _, rec := range log[cut:] {
		decider.Apply(r, rec)
	}
	if _, h, _ := decider.Snapshot(r); h != want {
		w.fail(KindRefold, "fold from a snapshot at record %d of %d hashes %s, the authoritative fold %s", cut, len(log), h, want)
	}
}

func (w *world) checkLiveness() {
	w.stats.LivenessChecks++
	for i, id := range w.auth.Partitions {
		o := w.auth.Owners[i]
		if w.unplaceable(id) {
			continue // no eligible member meets its constraint (placement.go)
		}
		if o.Owner == "" {
			w.fail(KindLiveness, "%s is unowned %v after the group went quiet (bound %v)", id, w.T-w.calmStart, w.quietBound)
			return
		}
		m := w.auth.Incarnation(o.Owner, o.Inc)
		if m == nil || !m.Live() {
			w.fail(KindLiveness, "%s is owned by %s/%d, which is not live, %v after the group went quiet", id, o.Owner, o.Inc, w.T-w.calmStart)
			return
		}
		p := w.byNonce[m.Nonce]
		if p == nil || p.dead {
			w.fail(KindLiveness, "%s is owned by %s/%d, whose process is gone, %v after the group went quiet", id, o.Owner, o.Inc, w.T-w.calmStart)
			return
		}
		pid := universeIndex[id]
		if w.owner[pid] != int32(p.n) {
			w.fail(KindLiveness, "%s is owned by %s but it does not believe so %v after the group went quiet (believer: %d)", id, p.name(), w.T-w.calmStart, w.owner[pid])
			return
		}
	}
}

// describe summarizes the world for a failure report.
func (w *world) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "log %d records, last seq %d, phase %v gen %d window %v\n", len(w.st.log), w.auth.LastSeq, w.auth.Phase(), w.auth.Generation, w.auth.Window)
	for _, id := range w.auth.Order {
		m := w.auth.Members[id]
		fmt.Fprintf(&b, "  member %s/%d live=%v leaving=%v closing=%v owns %d\n", m.ID, m.Incarnation, m.Live(), m.Leaving, m.Closing, len(w.auth.Owned(m.ID, m.Incarnation)))
	}
	for _, p := range w.procs {
		if p.dead {
			continue
		}
		fmt.Fprintf(&b, "  proc %s: seq %d stopped=%v leader=%v lease=%v believes %d paused=%v\n", p.name(), p.st.LastSeq, p.m.Stopped(), p.m.IsLeader(), p.m.LeaseValid(p.now(w.T)), len(p.belief), p.pausedUntil > w.T)
	}
	return b.String()
}

// brief describes an event compactly for the trace.
func brief(ev events.Event) string {
	switch e := ev.(type) {
	case *events.AssignmentDecided:
		var b strings.Builder
		fmt.Fprintf(&b, "gen %d on %d:", e.Generation, e.BasedOn)
		for _, m := range e.Moves {
			fmt.Fprintf(&b, " %v %s/%d->%s/%d", []uint32(m.Parts), m.From, m.FromInc, m.To, m.ToInc)
		}
		return b.String()
	case *events.PartitionsReleased:
		return fmt.Sprintf("%s/%d %v", e.Member, e.Incarnation, e.Released)
	case *events.MemberClaimed:
		return fmt.Sprintf("%q %s", e.ID, e.Nonce)
	case *events.PartitionsDeclared:
		return fmt.Sprintf("v%d %d ids by %s", e.Version, len(e.IDs), e.By)
	case *events.MemberRemoved:
		return fmt.Sprintf("%s/%d", e.Member, e.Incarnation)
	case *events.MemberLeft:
		return fmt.Sprintf("%s/%d", e.Member, e.Incarnation)
	case *events.MemberClosing:
		return fmt.Sprintf("%s/%d", e.Member, e.Incarnation)
	}
	return ""
}
