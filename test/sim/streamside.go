package sim

import (
	"slices"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
	"github.com/parti-io/parti/rawmember"
)

// --- the stream side -------------------------------------------------------

func (w *world) push(r *request) {
	h := append(w.arrivals, r)
	i := len(h) - 1
	for i > 0 {
		j := (i - 1) / 2
		if !reqLess(h[i], h[j]) {
			break
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
	w.arrivals = h
}

func reqLess(a, b *request) bool {
	if a.arrive != b.arrive {
		return a.arrive < b.arrive
	}
	return a.ord < b.ord
}

func (w *world) pop() *request {
	h := w.arrivals
	r := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = nil
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r2 := l + 1; r2 < n && reqLess(h[r2], h[l]) {
			c = r2
		}
		if !reqLess(h[c], h[i]) {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	w.arrivals = h
	return r
}

func (w *world) streamStep() {
	if len(w.held) > 0 && !w.st.stalled(w.T) {
		held := w.held
		w.held = nil
		w.tracef("stall over: %d held requests", len(held))
		for _, r := range held {
			w.process(r)
		}
	}
	for len(w.arrivals) > 0 && w.arrivals[0].arrive <= w.T {
		r := w.pop()
		if w.st.stalled(w.T) {
			r.stalled = true
			if r.kind == reqWatch || w.chance(0.5) {
				w.held = append(w.held, r)
			} else {
				w.tracef("stall drops %v of %s", r.kind, r.p.name())
			}
			continue
		}
		w.process(r)
	}
}

// netDelay is one network hop: mostly sub-millisecond to a few ms, with
// occasional spikes in chaos.
func (w *world) netDelay() time.Duration {
	if w.ph == phaseChaos && w.chance(0.02) {
		return w.dur(50*time.Millisecond, 400*time.Millisecond)
	}
	return w.dur(100*time.Microsecond, 5*time.Millisecond)
}

func (w *world) process(r *request) {
	p := r.p
	switch r.kind {
	case reqAppend:
		recs := w.st.appendLog(w.subj.Log(), r.evs, r.fenced, r.fence, w.T)
		if recs == nil {
			w.tracef("append by %s conflicts (fence %d, last %d)", p.name(), r.fence, w.st.lastLogSeq())
			w.answer(r, 0, rawmember.ErrConflict, liveness.LastMessage{})
			return
		}
		w.foldAuth(recs, r)
		w.answer(r, recs[len(recs)-1].Seq, nil, liveness.LastMessage{})
	case reqHeartbeat, reqVerdict:
		m := w.st.appendHB(r.subject, r.hb, r.verdict, r.hbSent, r.fenced, r.fence, w.T)
		if m == nil {
			w.tracef("%v by %s on %s conflicts (fence %d)", r.kind, p.name(), r.subject, r.fence)
			w.answer(r, 0, rawmember.ErrConflict, liveness.LastMessage{})
			return
		}
		if r.verdict != nil {
			w.tracef("VERDICT %d by %s on %s (fence %d)", m.seq, p.name(), r.subject, r.fence)
		}
		w.landedHB(m)
		w.answer(r, m.seq, nil, liveness.LastMessage{})
	case reqReadLast:
		w.answer(r, 0, nil, w.readFor(r))
	case reqInfo:
		w.answer(r, w.st.lastLogSeq(), nil, liveness.LastMessage{})
	case reqWatch:
		if p.dead || p.watchSubj != r.subject {
			return
		}
		p.watchLive = true
		if m := w.st.last(r.subject, w.T); m != nil {
			w.deliverVictim(p, m)
		}
	}
}

// answer sends the stream's answer back to the member, unless it is lost or
// would arrive after the client gave up (the timeout then reports).
func (w *world) answer(r *request, seq uint64, err error, last liveness.LastMessage) {
	p := r.p
	if p.dead {
		return
	}
	if w.ph == phaseChaos && w.chance(w.opt.LossProb) {
		if r.kind == reqHeartbeat || r.kind == reqReadLast {
			p.healthy = false // its heartbeats are no longer all acknowledged
		}
		w.tracef("answer to %v of %s lost", r.kind, p.name())
		return
	}
	due := w.T + w.netDelay()
	if due >= r.deadline {
		return
	}
	w.deliver(p, &item{due: due, kind: itemAnswer, req: r, seq: seq, err: err, last: last})
}

func (w *world) deliver(p *proc, it *item) {
	w.ord++
	it.ord = w.ord
	i := len(p.inbox)
	for i > 0 && (p.inbox[i-1].due > it.due || (p.inbox[i-1].due == it.due && p.inbox[i-1].ord > it.ord)) {
		i--
	}
	p.inbox = slices.Insert(p.inbox, i, it)
}

// landedHB hands a heartbeat-subject message to whoever watches the subject.
func (w *world) landedHB(m *hbMessage) {
	for _, p := range w.procs {
		if !p.dead && p.watchLive && p.watchSubj == m.subject {
			w.deliverVictim(p, m)
		}
	}
}

func (w *world) deliverVictim(p *proc, m *hbMessage) {
	w.deliver(p, &item{due: w.T + w.netDelay(), kind: itemVictim, msg: m})
}

// foldAuth folds landed records into the authoritative state and checks what
// only the authoritative fold can see: fenced leader appends apply where they
// landed, no healthy member is expired, and a restart inside the grace moves
// nothing.
func (w *world) foldAuth(recs []events.Record, r *request) {
	for _, rec := range recs {
		var removedNonce string
		stable := false
		switch e := rec.Event.(type) {
		case *events.MemberRemoved:
			if m := w.auth.Incarnation(e.Member, e.Incarnation); m != nil {
				removedNonce = m.Nonce
			}
		case *events.MemberClosing:
			stable = w.settled()
		}
		w.graceBefore(rec)
		var before []string // nonces of the members before rec
		grants := false
		switch rec.Event.(type) {
		case *events.MemberClaimed, *events.MemberRemoved, *events.MemberLeft, *events.GraceEnded, *events.Genesis:
			grants = true
			for _, id := range w.auth.Order {
				before = append(before, w.auth.Members[id].Nonce)
			}
		}
		out := w.apply(w.auth, rec)
		if grants && out.Kind != decider.Skipped {
			w.checkGrants(rec.Seq, before)
		}
		w.authOut = append(w.authOut, out.Kind)
		if w.opt.Trace > 0 {
			w.tracef("seq %d %v by %s: %v %s %s", rec.Seq, rec.Event.Type(), r.p.name(), out.Kind, out.Reason, brief(rec.Event))
		}
		if r.isLeader && out.Kind != decider.Applied && out.Kind != decider.Partial {
			w.fail(KindDecisionRejected, "fenced %v at seq %d by %s: %v (%s)", rec.Event.Type(), rec.Seq, r.p.name(), out.Kind, out.Reason)
		}
		switch e := rec.Event.(type) {
		case *events.AssignmentDecided:
			if out.Kind == decider.Applied || out.Kind == decider.Partial {
				w.stats.Decisions++
				w.graceDecision(rec.Seq, e)
			}
		case *events.MemberRemoved:
			if out.Kind == decider.Applied && removedNonce != "" {
				w.stats.Expired++
				if p := w.byNonce[removedNonce]; p != nil && p.healthy && !p.dead {
					w.fail(KindHealthyExpired, "%s was removed at seq %d (verdict %d by %s) although it was never paused, isolated or crashed and its heartbeats were acked whenever the stream was up",
						p.name(), rec.Seq, e.VerdictSeq, e.Judge)
				}
			}
		case *events.MemberClosing:
			if out.Kind == decider.Applied {
				if m := w.auth.Incarnation(e.Member, e.Incarnation); m != nil && m.Closing {
					// An operator's cordon or drain marks the incarnation,
					// and its restart is not marked: the strategy may then
					// rebalance what the cordon kept, a change of its own.
					marked := m.Cordoned || m.Draining
					w.graces = append(w.graces, graceTrack{id: e.Member, inc: e.Incarnation, seq: rec.Seq, stable: stable && !marked})
				}
			}
		case *events.MemberClaimed:
			w.graceClaimed(e)
		}
	}
	w.authDirty = true
}

// settled reports whether the authoritative state needs nothing: stable, no
// claim waiting, and the leader would decide nothing.
func (w *world) settled() bool {
	if w.auth.Phase() != decider.PhaseStable || len(w.auth.Pending) > 0 {
		return false
	}
	l, ok := w.auth.Leader()
	if !ok {
		return false
	}
	d, err := decider.Decide(w.auth, l.ID, l.Incarnation)
	return err == nil && d == nil
}

// graceBefore ends the tracking of restarts when anything else changes the
// group.
func (w *world) graceBefore(rec events.Record) {
	if len(w.graces) == 0 {
		return
	}
	keep := w.graces[:0]
	for _, g := range w.graces {
		other := false
		switch e := rec.Event.(type) {
		case *events.MemberClaimed:
			other = e.ID != g.id
		case *events.AssignmentDecided, *events.PartitionsReleased, *events.WindowClosed:
		default:
			other = true
		}
		if !other {
			keep = append(keep, g)
		}
	}
	w.graces = keep
}

func (w *world) graceClaimed(e *events.MemberClaimed) {
	for i := range w.graces {
		g := &w.graces[i]
		if g.granted || e.ID != g.id {
			continue
		}
		if m := w.auth.GrantedTo(e.Nonce); m != nil && m.ID == g.id {
			g.granted = true
			if g.stable {
				w.stats.GraceRestarts++
			}
			w.tracef("restart of %s inside the grace granted as %s/%d", g.id, m.ID, m.Incarnation)
		}
	}
}

func (w *world) graceDecision(seq uint64, d *events.AssignmentDecided) {
	for _, g := range w.graces {
		if !g.stable {
			continue
		}
		for _, mv := range d.Moves {
			if mv.From == g.id {
				w.fail(KindGraceMoved, "decision at seq %d moves %v from %s/%d, which closed for a restart at seq %d in a settled group (restart granted: %v) with no other change since",
					seq, mv.Parts, mv.From, mv.FromInc, g.seq, g.granted)
			}
		}
	}
}
