package sim

import (
	"fmt"
	"slices"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
	"github.com/parti-io/parti/rawmember"
)

// Adversary is a process with exactly a member's permissions that behaves as
// a buggy, confused or stale one would (issue 12): during chaos, at random
// times, it publishes junk on heartbeat subjects, replays old heartbeats and
// verdicts raw (unfenced) on any incarnation's subject, replays the claims of
// past incarnations on the log, and runs every operator action. Rates are
// per simulated second. Records are not signed: it never impersonates a live
// member with a fence of its own (out of scope, see README's guarantees).
//
// The Broken* fields inject the old behaviours the adversary must find, as
// drivers broken on purpose, never as production types.
type Adversary struct {
	JunkRate        float64 // junk on a heartbeat subject
	ReplayRate      float64 // a raw copy of an old heartbeat or verdict
	ClaimReplayRate float64 // a past incarnation's claim, again, on the log
	OperatorRate    float64 // an operator action
	// FocusJunk sends all junk to one subject: the current incarnation's
	// of the first member in the fold's order (the others' heartbeats,
	// their judges' among them, go through).
	FocusJunk bool

	// BrokenDropJunk: the judge's driver drops what is neither a heartbeat
	// nor a verdict (the old runtime: one junk message kept a dead member
	// live for ever).
	BrokenDropJunk bool
	// BrokenAnyVerdict: the refused-heartbeat resolution takes any verdict,
	// whoever it names, as its own expiry.
	BrokenAnyVerdict bool
	// BrokenUnnamedForce: force-expire names no incarnation, so the fold
	// removes the member at once, unfenced, while its lease runs.
	BrokenUnnamedForce bool
	// BrokenWaitAfterAdopt: after a refused heartbeat's resolution adopted
	// the subject's last sequence, the next heartbeat waits for the next
	// interval instead of going at once (the driver holds it until a
	// heartbeat interval after the refused one was sent).
	BrokenWaitAfterAdopt bool
	// BrokenForgetNonces: every fold forgets the nonces of incarnations
	// that are gone (it remembers those of current members and waiting
	// claims only), so a past incarnation's claim, replayed, is accepted
	// and later granted: a ghost.
	BrokenForgetNonces bool
}

// DefaultAdversary is the adversary every simulated run has.
func DefaultAdversary() Adversary {
	return Adversary{JunkRate: 0.4, ReplayRate: 0.3, ClaimReplayRate: 0.05, OperatorRate: 0.08}
}

// adversary runs the adversary's step: its actions during chaos, and, in
// every phase, the undoing of operator actions that would keep the group
// from settling (cordons, drains, a pause) a while after they were made.
func (w *world) adversary(dt time.Duration) {
	a := w.opt.Adversary
	if w.ph == phaseChaos && !w.st.stalled(w.T) {
		if w.perStep(a.JunkRate, dt) {
			w.advJunk()
		}
		if w.perStep(a.ReplayRate, dt) {
			w.advReplay()
		}
		if w.perStep(a.ClaimReplayRate, dt) {
			w.advClaimReplay()
		}
		if w.perStep(a.OperatorRate, dt) {
			w.advOperator()
		}
	}
	if w.ph != phaseChaos && !w.st.stalled(w.T) {
		// Before a calm phase's checks: every member eligible again,
		// rebalancing resumed.
		for _, id := range w.auth.Order {
			if m := w.auth.Members[id]; m.Cordoned || m.Draining {
				w.advAppend(&events.OperatorAction{Action: events.OpUncordon, Member: id, By: "adversary"})
			}
		}
		if w.auth.Paused {
			w.advAppend(&events.OperatorAction{Action: events.OpResume, By: "adversary"})
		}
	}
}

// advProc is the adversary's stand-in in requests (it never runs).
func (w *world) advProc() *proc {
	if w.adv == nil {
		w.adv = &proc{n: -1, id: "adversary", st: decider.New(),
			m: rawmember.New(rawmember.Config{ID: "adversary", Nonce: "adversary", Timings: w.opt.Timings})}
	}
	return w.adv
}

// advAppend appends ev to the log, unfenced, as the adversary.
func (w *world) advAppend(ev events.Event) {
	recs := w.st.appendLog(w.subj.Log(), []events.Event{ev}, false, 0, w.T)
	w.foldAuth(recs, &request{p: w.advProc(), kind: reqAppend})
}

// advSubject picks an incarnation's heartbeat subject: of a member the fold
// holds (live or not), or of one it removed.
func (w *world) advSubject() (string, bool) {
	ids := slices.Clone(w.auth.Order)
	if len(ids) == 0 {
		return "", false
	}
	id := ids[w.rng.IntN(len(ids))]
	m := w.auth.Members[id]
	inc := m.Incarnation
	if inc > 1 && w.chance(0.2) {
		inc-- // a past incarnation's subject
	}
	return w.subj.Heartbeat(id, inc), true
}

// advStore stores a copy of m (or junk, for nil) on subject, raw: no fence,
// no TTL. Watchers see it.
func (w *world) advStore(subject string, m *hbMessage) *hbMessage {
	sub := w.st.subject(subject, w.T)
	w.st.seq++
	nm := &hbMessage{seq: w.st.seq, subject: subject, ts: w.st.serverTime(w.T), raw: true}
	if m == nil || m.junk {
		nm.junk = true
	} else {
		nm.hb, nm.verdict, nm.sent = m.hb, m.verdict, m.sent
	}
	sub.msgs = append(sub.msgs, nm)
	w.landedHB(nm)
	return nm
}

func (w *world) advJunk() {
	subject, ok := w.advSubject()
	if w.opt.Adversary.FocusJunk && len(w.auth.Order) > 0 {
		m := w.auth.Members[w.auth.Order[0]]
		subject, ok = w.subj.Heartbeat(m.ID, m.Incarnation), true
	}
	if !ok {
		return
	}
	m := w.advStore(subject, nil)
	w.stats.Junk++
	w.tracef("ADVERSARY junk %d on %s", m.seq, subject)
}

// advReplay copies an old heartbeat or verdict (of any subject) onto a
// subject: its own (an old heartbeat of the same incarnation, item 8) or
// another incarnation's (a dead incarnation's heartbeat, item 6; another
// member's verdict, item 5).
func (w *world) advReplay() {
	names := make([]string, 0, len(w.st.hb))
	for name, sub := range w.st.hb {
		if len(sub.msgs) > 0 {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return
	}
	slices.Sort(names)
	from := names[w.rng.IntN(len(names))]
	msgs := w.st.hb[from].msgs
	src := msgs[w.rng.IntN(len(msgs))]
	to := from
	if w.chance(0.6) {
		if s, ok := w.advSubject(); ok {
			to = s
		}
	}
	m := w.advStore(to, src)
	w.stats.Replays++
	what := "heartbeat"
	if src.verdict != nil {
		what = "verdict"
	}
	w.tracef("ADVERSARY replays %s %d of %s on %s as %d", what, src.seq, from, to, m.seq)
}

// advClaimReplay appends again the claim of an incarnation that is gone
// (item 7): the fold must never grant its nonce again.
func (w *world) advClaimReplay() {
	if len(w.retired) == 0 {
		return
	}
	n := w.retired[w.rng.IntN(len(w.retired))]
	id := ""
	if p := w.byNonce[n]; p != nil {
		id = p.id
	}
	w.stats.Replays++
	w.tracef("ADVERSARY replays the claim of %s (nonce %s)", id, n)
	w.advAppend(&events.MemberClaimed{ID: id, Nonce: n, MaxProtocol: events.MaxVersion})
}

// advOperator runs one operator action on the group as the fold shows it.
func (w *world) advOperator() {
	if len(w.auth.Order) == 0 {
		return
	}
	ids := slices.Clone(w.auth.Order)
	id := ids[w.rng.IntN(len(ids))]
	m := w.auth.Members[id]
	var op events.OperatorAction
	switch k := w.rng.IntN(10); {
	case k < 3:
		op = events.OperatorAction{Action: events.OpForceExpire, Member: id, Incarnation: m.Incarnation}
		if w.opt.Adversary.BrokenUnnamedForce {
			op.Incarnation = 0
		}
		// A member an operator force-expired is not healthy: its
		// expiry is what the operator asked for.
		if p := w.byNonce[m.Nonce]; p != nil {
			p.healthy = false
		}
	case k < 5:
		op = events.OperatorAction{Action: events.OpDrain, Member: id}
	case k < 6:
		op = events.OperatorAction{Action: events.OpCordon, Member: id}
	case k < 7:
		op = events.OperatorAction{Action: events.OpUncordon, Member: id}
	case k < 8:
		op = events.OperatorAction{Action: events.OpPause}
	case k < 9:
		op = events.OperatorAction{Action: events.OpResume}
	default:
		if len(w.auth.Partitions) == 0 || !m.Eligible() {
			return
		}
		op = events.OperatorAction{Action: events.OpMove, Partition: w.auth.Partitions[w.rng.IntN(len(w.auth.Partitions))], Target: id}
	}
	op.By = "adversary"
	w.stats.OperatorActions++
	w.tracef("ADVERSARY operator %s %s/%d %s", op.Action, op.Member, op.Incarnation, op.Partition)
	w.advAppend(&op)
}

// apply folds rec into st, and, for a fold broken on purpose to forget
// retired nonces, then forgets them.
func (w *world) apply(st *decider.State, rec events.Record) decider.Outcome {
	out := decider.Apply(st, rec)
	if w.opt.Adversary.BrokenForgetNonces && out.Kind != decider.Skipped {
		for n := range st.Spent {
			if st.GrantedTo(n) == nil {
				delete(st.Spent, n)
			}
		}
	}
	return out
}

// holdHeartbeat reports whether a driver broken on purpose to wait after an
// adopt holds heartbeat r (sent later by releaseHeartbeat).
func (w *world) holdHeartbeat(p *proc, r *request) bool {
	if !w.opt.Adversary.BrokenWaitAfterAdopt || w.T >= p.hbHoldUntil {
		return false
	}
	p.heldHB = r
	return true
}

// releaseHeartbeat sends the heartbeat a broken driver held, once the
// interval it waited for has passed.
func (w *world) releaseHeartbeat(p *proc) {
	if p.heldHB != nil && w.T >= p.hbHoldUntil {
		r := p.heldHB
		p.heldHB = nil
		p.lastHBSent = w.T
		w.send(p, r)
	}
}

// dropForJudge reports whether a driver broken on purpose drops m before
// the judge sees it.
func (w *world) dropForJudge(m *hbMessage) bool {
	return w.opt.Adversary.BrokenDropJunk && m.junk
}

// readFor answers a read of a heartbeat subject: what readAfter finds, or,
// for a driver broken on purpose to drop junk, the last message that is not
// junk (the old judge never saw junk, so it never fenced on it).
func (w *world) readFor(r *request) liveness.LastMessage {
	if !w.opt.Adversary.BrokenDropJunk {
		return w.st.readAfter(r.subject, r.fence, w.T)
	}
	msgs := w.st.subject(r.subject, w.T).msgs
	for i := len(msgs) - 1; i >= 0; i-- {
		if !msgs[i].junk {
			return msgs[i].describe()
		}
	}
	return liveness.LastMessage{Empty: true}
}

// driverReads is what the driver reports of a heartbeat subject's last
// message: as read, or, broken on purpose, with any verdict made to name the
// reader.
func (w *world) driverReads(last liveness.LastMessage) liveness.LastMessage {
	if w.opt.Adversary.BrokenAnyVerdict && last.IsVerdict {
		last.VerdictMember, last.VerdictIncarnation = "", 0
	}
	return last
}

// checkSelfStop fails the run when a healthy member stopped itself as
// expired although the fold holds no verdict's removal or force-expire of it:
// something the adversary published cost it its incarnation.
func (w *world) checkSelfStop(p *proc, r rawmember.StopReason) {
	if r != rawmember.StopExpired || !p.healthy {
		return
	}
	id, inc, ok := p.m.Identity()
	if !ok {
		return
	}
	m := w.auth.Incarnation(id, inc)
	if m == nil || m.Forced != 0 {
		return
	}
	// A verdict against it on its subject (a judge's) is the existing
	// healthy-expired check's business; only a stop with none is the
	// adversary's doing.
	for _, hm := range w.st.subject(w.subj.Heartbeat(id, inc), w.T).msgs {
		if hm.verdict != nil && !hm.raw && hm.verdict.Member == id && hm.verdict.Incarnation == inc {
			return
		}
	}
	w.fail(KindHealthyExpired, "%s stopped itself as expired although no verdict against it exists and nobody force-expired it", fmt.Sprint(p.name()))
}
