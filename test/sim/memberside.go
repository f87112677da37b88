package sim

import (
	"errors"
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
	"github.com/parti-io/parti/rawmember"
)

// --- the member side -------------------------------------------------------

func (w *world) procStep(p *proc, dt time.Duration) {
	if p.dead || p.pausedUntil > w.T {
		return
	}
	p.lastRun = w.T
	// The application first finishes what it was doing when it last
	// checked (before a pause, that check is old): it writes.
	w.write(p)

	now := p.now(w.T)
	w.drain(p, now)
	if p.dead {
		return
	}
	w.fold(p)

	if w.T >= p.nextInfo && p.isoUntil <= w.T {
		p.nextInfo = w.T + time.Second
		w.send(p, &request{kind: reqInfo})
	}
	if w.ph == phaseChaos && w.chance(0.5*dt.Seconds()) && p.lagTill <= w.T {
		p.lag = w.dur(0, 150*time.Millisecond)
	}
	if p.lagTill != 0 && p.lagTill <= w.T {
		p.lagTill = 0
		p.lag = w.dur(0, 150*time.Millisecond)
	}

	w.releaseHeartbeat(p)
	out := p.d.Step(p.st, now)
	w.flushActs(p, out.Actions)
	if p.dead {
		return
	}
	w.app(p, now, out.Ready)

	switch r := p.m.Stopped(); r {
	case rawmember.NotStopped:
		if p.closing && w.T-p.closeAt > 3*time.Second {
			w.exit(p, "closed (close not acknowledged)")
		}
	case rawmember.StopLeft, rawmember.StopClosed:
		w.exit(p, r.String())
	default:
		w.checkSelfStop(p, r)
		w.exit(p, r.String())
		// The process rejoins as a new incarnation.
		w.pending = append(w.pending, pendingStart{at: w.T + w.dur(50*time.Millisecond, time.Second), id: p.id})
	}
}

// drain hands the driver's inbox to the member: answers, timeouts and the
// watched subject's messages that are due.
func (w *world) drain(p *proc, now time.Duration) {
	keep := p.inbox[:0]
	tailDown := p.tailUntil > w.T
	iso := p.isoUntil > w.T
	for i, it := range p.inbox {
		if it.due > w.T {
			keep = append(keep, p.inbox[i:]...)
			break
		}
		switch it.kind {
		case itemVictim:
			if tailDown {
				keep = append(keep, it)
				continue
			}
			m := it.msg
			_, member, inc := w.subj.Parse(m.subject)
			if m.verdict != nil {
				w.tracef("%s sees verdict %d on %s", p.name(), m.seq, m.subject)
			}
			// Junk reaches the judge too (adversary.go), unless the
			// driver is broken on purpose to drop it. A driver broken on
			// purpose dates heartbeats by a foreign clock (judgeclock.go).
			if w.dropForJudge(m) {
				break
			}
			desc := m.describe()
			if p.m.VictimRecord(member, inc, desc, m.verdict, w.victimNow(p, member, inc, m, desc, now)) {
				w.stats.JunkSeen++
			}
		case itemAnswer:
			if iso {
				continue // lost on the way: the timeout reports
			}
			w.report(p, it.req, it.seq, it.err, it.last, now)
		case itemTimeout:
			w.report(p, it.req, 0, errTimeout, liveness.LastMessage{}, now)
		case itemNoConn:
			w.report(p, it.req, 0, errNoConn, liveness.LastMessage{}, now)
		}
		if p.dead {
			return
		}
	}
	clear(p.inbox[len(keep):])
	p.inbox = keep
}

func (w *world) report(p *proc, r *request, seq uint64, err error, last liveness.LastMessage, now time.Duration) {
	if r.done {
		return
	}
	r.done = true
	switch r.kind {
	case reqAppend:
		p.m.Done(r.actID, seq, err, now)
		if r.isClose && err == nil {
			p.exitOnAck = true
		}
	case reqHeartbeat:
		if err == nil {
			p.m.HeartbeatAcked(r.actID, seq, now)
		} else {
			if !r.stalled && !errors.Is(err, rawmember.ErrConflict) {
				p.healthy = false
			}
			p.m.HeartbeatFailed(r.actID, now, err != errNoConn)
		}
	case reqVerdict:
		p.m.VerdictDone(r.actID, seq, err)
	case reqReadLast:
		if err != nil && !r.stalled {
			p.healthy = false
		}
		p.m.HeartbeatResolved(w.driverReads(last), err == nil)
		if r.subject != p.watchSubj {
			// A broken driver's next heartbeat waits for the interval.
			p.hbHoldUntil = p.lastHBSent + w.opt.Timings.Heartbeat
		}
	case reqInfo:
		if err == nil {
			p.m.Learned(seq, now)
		}
	}
	if p.exitOnAck {
		p.exitOnAck = false
		w.exit(p, "closed (close acknowledged)")
	}
}

// fold delivers the log records whose tail lag has passed, in order.
func (w *world) fold(p *proc) {
	if p.tailUntil > w.T {
		return
	}
	log := w.st.log
	for p.cursor < len(log) && w.st.logLanded[p.cursor]+p.lag <= w.T {
		out := w.apply(p.st, log[p.cursor])
		if want := w.authOut[p.cursor]; out.Kind != want {
			w.fail(KindDivergence, "%s folded seq %d as %v (%s), the authoritative fold as %v", p.name(), log[p.cursor].Seq, out.Kind, out.Reason, want)
		}
		p.cursor++
		p.stDirty = true
	}
}

// flush carries out the member's pending actions.
func (w *world) flush(p *proc) { w.flushActs(p, p.m.Actions()) }

// flushActs carries out actions of p's member.
func (w *world) flushActs(p *proc, acts []rawmember.Action) {
	for _, a := range acts {
		switch a.Kind {
		case rawmember.ActAppend:
			r := &request{kind: reqAppend, actID: a.ID, subject: w.subj.Log(), evs: a.Events, fenced: a.Fenced, fence: a.Fence}
			for _, ev := range a.Events {
				if _, ok := ev.(*events.MemberClosing); ok {
					r.isClose = true
				}
			}
			r.isLeader = a.Fenced
			w.send(p, r)
			if a.Fenced && w.ph == phaseChaos && w.chance(w.opt.LeaderCrashProb) {
				w.stats.LeaderCrashes++
				w.crash(p, "leader crashes mid-decision:")
				if w.chance(0.6) {
					w.pending = append(w.pending, pendingStart{at: w.T + w.dur(100*time.Millisecond, 6*time.Second), id: p.id})
				}
				return
			}
		case rawmember.ActHeartbeat:
			r := &request{kind: reqHeartbeat, actID: a.ID, subject: w.subj.Heartbeat(a.Member, a.Inc), hb: a.Heartbeat, hbSent: p.now(w.T), fenced: a.Fenced && !w.opt.Broken.UnfencedHeartbeats, fence: a.Fence}
			if !w.holdHeartbeat(p, r) {
				p.lastHBSent = w.T
				w.send(p, r)
			}
		case rawmember.ActVerdict:
			w.tracef("%s issues a verdict on %s/%d fenced on %d", p.name(), a.Member, a.Inc, a.Fence)
			w.send(p, &request{kind: reqVerdict, actID: a.ID, subject: w.subj.Heartbeat(a.Member, a.Inc), verdict: a.Verdict, fenced: a.Fenced, fence: a.Fence})
		case rawmember.ActReadLast:
			w.send(p, &request{kind: reqReadLast, subject: w.subj.Heartbeat(a.Member, a.Inc), fence: a.Fence})
		case rawmember.ActWatch:
			p.watchSubj, p.watchLive = w.subj.Heartbeat(a.Member, a.Inc), false
			p.watched(a.Member, a.Inc)
			w.send(p, &request{kind: reqWatch, subject: p.watchSubj})
		case rawmember.ActUnwatch:
			p.watchSubj, p.watchLive = "", false
			p.unwatched()
		}
	}
}

// send puts a request on the network: it arrives at the stream after a delay,
// unless the member's connection is down; the client gives up at its deadline.
func (w *world) send(p *proc, r *request) {
	w.ord++
	r.ord = w.ord
	r.p = p
	r.sent = w.T
	timeout := w.opt.AppendTimeout
	if r.kind == reqHeartbeat || r.kind == reqReadLast || r.kind == reqVerdict {
		timeout = w.opt.AckTimeout
	}
	r.deadline = w.T + timeout
	if r.kind != reqWatch {
		w.deliver(p, &item{due: r.deadline, kind: itemTimeout, req: r})
	}
	if p.isoUntil > w.T {
		if r.kind != reqWatch && w.chance(0.5) {
			w.deliver(p, &item{due: w.T + w.dur(0, 5*time.Millisecond), kind: itemNoConn, req: r})
		} else if r.kind == reqWatch {
			// The consumer is created once the connection is back.
			r.arrive = p.isoUntil + w.netDelay()
			w.push(r)
		}
		return
	}
	r.arrive = w.T + w.netDelay()
	w.push(r)
}

// appFinish is the longest a simulated application takes to finish a
// partition in its Revoked call.
const appFinish = 200 * time.Millisecond

// app is the simulated application, driven by the handler contract
// (rawmember.Driver's Ready) as parti.Member's dispatcher drives a Handler: the
// calls are made one at a time, in order. Assigned starts acting at once; a
// Revoked call finishes the partition for a short while before it returns
// (at once when the lease is gone or the member closes), and the calls after
// it wait, as they wait for a blocking Revoked. In a script, each call is
// made on the process's Handler too: Assigned when the application starts
// acting, Revoked when the revocation returns.
//
// An application broken on purpose (Broken.AssignBeforeRelease) also acts,
// on its own, on what its fold names its member the target of (actEarly).
func (w *world) app(p *proc, now time.Duration, rd rawmember.Ready) {
	p.belief = p.d.Held()
	if w.opt.Broken.AssignBeforeRelease {
		w.actEarly(p, now)
	}
	valid := p.m.LeaseValid(now) && !p.closing
	p.calls = append(p.calls, rd.Calls...)
	for _, o := range rd.Reindexed {
		if pid, ok := w.uindex[o.ID]; ok && p.acting[pid].on {
			p.acting[pid].token = o.Token
		}
		w.reindexHanded(p, o)
	}
	for len(p.calls) > 0 {
		c := p.calls[0]
		pid, known := w.uindex[c.Owned.ID]
		if !c.Revoke {
			if known {
				p.acting[pid] = act{on: true, token: c.Owned.Token}
			}
			p.calls = p.calls[1:]
			w.callAssigned(p, c)
			continue
		}
		if known {
			a := &p.acting[pid]
			switch {
			case !valid || !a.on:
				*a = act{}
			case a.stopAt == 0:
				a.stopAt = w.T + w.dur(0, appFinish)
				return
			case w.T < a.stopAt:
				return
			default:
				*a = act{}
			}
		}
		p.calls = p.calls[1:]
		w.callRevoked(p, c) // the call returns now
		if p.d.Returned(c) {
			w.tracef("app of %s lets go of %s", p.name(), c.Owned.ID)
		}
	}
}

// actEarly is the application broken on purpose (Broken.AssignBeforeRelease):
// besides what the handler contract gave it, it acts on every partition its
// fold names its member the target of a move, before the source released it
// and without any Assigned call, and believes it owns them. It stops acting
// on one, as silently, once its fold no longer names it the target (the move
// completed: the contract's Assigned takes over; or it was cancelled). What
// the contract gave it is left alone.
func (w *world) actEarly(p *proc, now time.Duration) {
	for pid := range p.acting {
		if p.acting[pid].early {
			p.acting[pid] = act{}
		}
	}
	for _, o := range w.targetOf(p, now) {
		pid, ok := w.uindex[o.ID]
		if !ok || p.acting[pid].on {
			continue
		}
		p.acting[pid] = act{on: true, token: o.Token, early: true}
		p.belief = append(p.belief, o)
	}
}

// targetOf is what the broken AssignBeforeRelease application acts on early:
// the partitions the fold names p's member as the target of a move, before
// the source released them (while the member may act at all).
func (w *world) targetOf(p *proc, now time.Duration) []rawmember.Owned {
	id, inc, ok := p.m.Identity()
	if !ok || !p.m.LeaseValid(now) || p.closing || p.leaving {
		return nil
	}
	var out []rawmember.Owned
	for i := range p.st.Owners {
		if o := &p.st.Owners[i]; o.Target == id && o.TargetInc == inc {
			out = append(out, rawmember.Owned{Index: uint32(i), ID: p.st.Partitions[i], Token: events.Token{Seq: p.st.LastSeq, Incarnation: inc}})
		}
	}
	return out
}

// write is the application writing to its storage, a token-checking store
// that remembers the highest token per partition and rejects lower ones. The
// store can only protect the current owner if tokens increase along the log:
// a superseded owner's token must be below the current owner's, and the
// current owner's writes must never be rejected, whatever the scenario. In the
// promise no write may be rejected at all.
func (w *world) write(p *proc) {
	id, inc, _ := p.m.Identity()
	for pid := range p.acting {
		a := &p.acting[pid]
		if !a.on {
			continue
		}
		w.stats.Writes++
		hi, seen := w.store[pid], w.storeSeen[pid]
		accepted := !seen || !a.token.Less(hi)
		if accepted {
			w.store[pid], w.storeSeen[pid] = a.token, true
		} else {
			w.stats.Rejected++
		}
		i, declared := w.auth.PartitionIndex(w.universe[pid])
		if !declared || w.auth.Owners[i].Owner == "" {
			continue
		}
		o := w.auth.Owners[i]
		cur := o.FencingToken()
		current := o.Owner == id && o.Inc == inc && a.token == cur
		switch {
		case current && !accepted:
			w.fail(KindStaleWrite, "the store rejected the current owner %s's write to %s with token %v (store holds %v)", p.name(), w.universe[pid], a.token, hi)
		case !current && !a.token.Less(cur):
			w.fail(KindStaleWrite, "%s writes %s with token %v, not below the current owner %s/%d's token %v", p.name(), w.universe[pid], a.token, o.Owner, o.Inc, cur)
		case !current && !accepted:
			w.stats.StaleRejected++
		}
		if !accepted && !w.opt.ExpectOverlap {
			w.fail(KindWriteRejected, "%s's write to %s with token %v was rejected (store holds %v)", p.name(), w.universe[pid], a.token, hi)
		}
	}
}
