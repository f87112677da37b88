package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/rawmember"
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
	if w.ph == phaseCalm {
		w.checkExpiries()
		if w.T-w.calmStart >= w.quietBound {
			w.checkLiveness()
			w.checkClaims()
		}
	}
}

// checkGrants follows the grants of the authoritative fold after the record
// at seq: a nonce is granted to one incarnation only, ever (a nonce granted
// again is a ghost of a past incarnation, its claim replayed), and the nonces
// of incarnations that left the fold are retired (the adversary replays
// their claims). before are the members' nonces before the record.
func (w *world) checkGrants(seq uint64, before []string) {
	now := make(map[string]bool, len(w.auth.Order))
	for _, id := range w.auth.Order {
		m := w.auth.Members[id]
		now[m.Nonce] = true
		inc := fmt.Sprintf("%s/%d", id, m.Incarnation)
		if prev, ok := w.grants[m.Nonce]; !ok {
			w.grants[m.Nonce] = grant{inc: inc, at: w.T}
		} else if prev.inc != inc {
			w.fail(KindGhost, "seq %d granted nonce %s to %s, already granted to %s: a past incarnation's claim was granted again", seq, m.Nonce, inc, prev.inc)
		}
	}
	for _, n := range before {
		if !now[n] {
			w.retired = append(w.retired, n)
		}
	}
}

// expirySlack is what the simulator allows a crashed member's expiry beyond
// the expiry itself, for each dead member the fold holds (adjacent dead
// members in the ring are judged one after the other): the judge's first
// acknowledged heartbeat after it started watching (one interval and an ack
// budget; the count starts there) and, when the verdict's judge is gone
// before its removal, the wait of another judge before appending it
// (rawmember's follow delay: another interval and ack budget).
func (w *world) expirySlack() time.Duration {
	t := w.opt.Timings
	return 2 * (t.Heartbeat + t.AckBudget)
}

// checkExpiries checks, in a quiet phase, that every member the fold holds
// whose process is gone (crashed, or exited without its leave or close
// landing) is removed within k × (expiry + expirySlack) of its death, of its
// grant (a claim whose process died while it waited is granted later) or of
// the start of the quiet phase or of its current judge's watch, whichever
// is latest, where k is the number
// of such members, now or at the quiet phase's start if more (each may wait
// for the previous one's removal to have a live judge). A closed member waits for its grace instead and is left out.
func (w *world) checkExpiries() {
	dead := w.deadMembers()
	if len(dead) == 0 {
		return
	}
	k := max(len(dead), w.calmDead)
	bound := time.Duration(k) * (w.opt.Timings.Expiry + w.expirySlack())
	w.trackJudges()
	for _, m := range dead {
		since := max(w.calmStart, w.grants[m.Nonce].at)
		if j, ok := w.judges[fmt.Sprintf("%s/%d", m.ID, m.Incarnation)]; ok {
			since = max(since, j.since)
		}
		if p := w.byNonce[m.Nonce]; p != nil {
			since = max(since, p.diedAt)
		}
		if w.T-since > bound {
			w.fail(KindSlowExpiry, "%s/%d, whose process is gone, is still a member %v after the group went quiet (bound %v: %d dead × (expiry %v + %v))",
				m.ID, m.Incarnation, w.T-since, bound, k, w.opt.Timings.Expiry, w.expirySlack())
			return
		}
	}
}

// judgeSeen is who judges an incarnation in the authoritative fold, and
// since when the simulator saw it so.
type judgeSeen struct {
	judge string
	since time.Duration
}

// trackJudges records, for every incarnation the authoritative fold holds,
// which member judges it (its ring neighbour) and since when. A judge that
// takes over (a member joined or left the ring, even in a quiet phase)
// counts the victim's silence from its own first acknowledged heartbeat
// after it began watching (DESIGN), so a dead member's bound runs from the
// judge change too.
func (w *world) trackJudges() {
	if w.judges == nil {
		w.judges = map[string]judgeSeen{}
	}
	seen := map[string]bool{}
	for _, id := range w.auth.Order {
		j := w.auth.Members[id]
		v, ok := w.auth.Victim(j.ID, j.Incarnation)
		if !ok {
			continue
		}
		vk, jk := fmt.Sprintf("%s/%d", v.ID, v.Incarnation), fmt.Sprintf("%s/%d", j.ID, j.Incarnation)
		seen[vk] = true
		if cur, ok := w.judges[vk]; !ok || cur.judge != jk {
			w.judges[vk] = judgeSeen{judge: jk, since: w.T}
		}
	}
	//parti:unordered deletes entries
	for vk := range w.judges {
		if !seen[vk] {
			delete(w.judges, vk)
		}
	}
}

// deadMembers returns the members the fold holds, not closed, whose
// process is gone.
func (w *world) deadMembers() []*decider.Member {
	var dead []*decider.Member
	for _, id := range w.auth.Order {
		m := w.auth.Members[id]
		if p := w.byNonce[m.Nonce]; !m.Closing && (p == nil || p.dead) {
			dead = append(dead, m)
		}
	}
	return dead
}

// checkClaims checks, once the quiet bound has passed, that no running
// process still waits for its claim, unless the ID's holder is another
// running process (two processes started with one ID): a restart with the
// ID of an incarnation that is gone is granted once that incarnation is
// removed (checkExpiries bounds that), never stuck.
func (w *world) checkClaims() {
	for _, p := range w.procs {
		if p.dead || p.m.Stopped() != rawmember.NotStopped {
			continue
		}
		if _, _, granted := p.m.Identity(); granted {
			continue
		}
		if h := w.auth.Members[p.id]; h != nil && h.Nonce != p.nonce {
			if hp := w.byNonce[h.Nonce]; hp != nil && !hp.dead {
				continue // a second process with a live incarnation's ID waits behind it, rightly
			}
		}
		if since := max(p.started, w.calmStart); w.T-since > w.quietBound {
			w.fail(KindStuckClaim, "%s's claim still waits %v after the group went quiet (bound %v)", p.name(), w.T-since, w.quietBound)
			return
		}
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
			pid, ok := w.uindex[o.ID]
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
					w.fail(KindAppOverlap, "the applications of %s and %s both act on %s (tokens %v and %v)", w.procs[q].name(), p.name(), w.universe[pid], w.procs[q].acting[pid].token, p.acting[pid].token)
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
		w.apply(s, r)
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
		w.apply(r, rec)
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
		pid := w.uindex[id]
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
