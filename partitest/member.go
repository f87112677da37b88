package partitest

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/rawmember"
)

// Member is one member process of a Group: the same state machine as a
// parti.Member (package rawmember), driven synchronously by the kit.
type Member struct {
	g      *Group
	drv    *rawmember.Driver // the incarnation and the handler contract, as parti.Member drives them
	h      parti.Handler
	ctx    context.Context
	cancel context.CancelFunc
	id     string
	inc    uint64

	owned   map[string]*owned // what the Handler holds, by partition ID
	stopped string            // why the process ended ("" while it runs)

	watch       string // the heartbeat subject watched
	watchMember string
	watchInc    uint64
}

type owned struct {
	a      parti.Assignment
	cancel context.CancelFunc
}

// raw returns the member's state machine.
func (m *Member) raw() *rawmember.Member { return m.drv.Member() }

// ID returns the member's granted ID.
func (m *Member) ID() string { return m.id }

// Incarnation returns the member's incarnation (1 for the first process of
// an ID, 2 for the next, ...).
func (m *Member) Incarnation() uint64 { return m.inc }

// IsLeader reports whether the member leads the group.
func (m *Member) IsLeader() bool { return m.stopped == "" && m.raw().IsLeader() }

// Assigned returns what the member's Handler holds now, sorted by index:
// assigned and not revoked since. Empty once the member stopped.
func (m *Member) Assigned() []parti.Assignment {
	out := make([]parti.Assignment, 0, len(m.owned))
	for _, o := range m.owned {
		out = append(out, o.a)
	}
	slices.SortFunc(out, func(x, y parti.Assignment) int { return cmp.Compare(x.Index, y.Index) })
	return out
}

// Leave leaves the group gracefully: the Handler gets every partition
// revoked (RevokeStopped) at once, the member releases them, and Leave
// returns once it is gone from the group. The other members take the
// partitions over (Settle to see it through); the last member's stay
// unowned until a member joins. It fails the test if the leave takes longer
// than Options.SettleLimit.
func (m *Member) Leave() {
	g := m.g
	g.tb.Helper()
	defer g.enter("Leave")()
	m.mustRun("Leave")
	m.apply(m.drv.Leave())
	g.runUntil(fmt.Sprintf("Leave of %s/%d did not complete", m.id, m.inc), func() bool { return m.stopped != "" })
}

// Close closes the member for a restart: the Handler gets every partition
// revoked (RevokeStopped), the process appends its close and ends. The
// group keeps its ID and partitions for Options.Grace: a Join with the same
// ID before then takes them over with zero moves; after it they move.
func (m *Member) Close() {
	g := m.g
	g.tb.Helper()
	defer g.enter("Close")()
	m.mustRun("Close")
	m.apply(m.drv.Close())
	g.pump()
	if m.stopped == "" {
		g.fatalf("Close of %s/%d: the close did not land\n%s", m.id, m.inc, g.dump())
	}
}

// Crash ends the process without a word to the group: no Handler call (its
// Assignment contexts are cancelled, as a dead process's would be), no more
// heartbeats. The group takes its partitions over once its judge has
// expired it (Options.Timings.Expiry after its last heartbeat, in simulated
// time: Advance or Settle).
func (m *Member) Crash() {
	g := m.g
	g.tb.Helper()
	defer g.enter("Crash")()
	m.mustRun("Crash")
	m.end("crashed")
	clear(m.owned)
	g.crashed = append(g.crashed, m)
}

func (m *Member) mustRun(method string) {
	m.g.tb.Helper()
	if m.stopped != "" {
		m.g.fatalf("%s of %s/%d: the member already %s", method, m.id, m.inc, m.stopped)
	}
}

// end ends the process: it stops stepping and its contexts are cancelled.
func (m *Member) end(why string) {
	m.stopped = why
	m.cancel()
	m.g.drop(m)
}

// step lets the member act once at the group's reading, as parti.Member's
// loop does: step the state machine on the fold, carry out its actions,
// hand the Handler what changed. It reports whether anything happened.
func (m *Member) step() bool {
	g := m.g
	g.tb.Helper()
	now := g.now
	seq := g.st.seq
	out := m.drv.Step(g.state, now)
	acted := false
	// The in-memory stream answers at once: results emit more actions.
	for acts := out.Actions; len(acts) > 0; acts = m.raw().Actions() {
		acted = true
		for _, a := range acts {
			m.execute(a)
		}
	}
	changed := m.apply(out.Ready)
	switch r, _ := m.drv.Stopped(); {
	case m.drv.Closing() && (r != rawmember.NotStopped || out.Closed):
		m.end("closed")
	case r == rawmember.StopLeft:
		m.end("left")
	case r != rawmember.NotStopped:
		g.fatalf("member %s/%d stopped unexpectedly: %s\n%s", m.id, m.inc, r, g.dump())
	}
	return acted || changed || g.st.seq != seq
}

// execute carries out one action against the in-memory stream and reports
// the outcome to the state machine at once.
func (m *Member) execute(a rawmember.Action) {
	g := m.g
	g.tb.Helper()
	now := g.now
	switch a.Kind {
	case rawmember.ActAppend:
		recs := g.st.appendLog(a.Events, a.Fenced, a.Fence, now)
		if recs == nil {
			m.raw().Done(a.ID, 0, rawmember.ErrConflict, now)
			return
		}
		g.apply(recs)
		m.raw().Done(a.ID, recs[len(recs)-1].Seq, nil, now)
	case rawmember.ActHeartbeat:
		subject := g.st.subj.Heartbeat(a.Member, a.Inc)
		seq, ok := g.st.appendHB(subject, hbMessage{hb: a.Heartbeat}, a.Fenced, a.Fence)
		if !ok {
			m.raw().HeartbeatFailed(a.ID, now, true)
			return
		}
		m.raw().HeartbeatAcked(a.ID, seq, now)
		g.heartbeatAppended(subject, seq, nil)
	case rawmember.ActVerdict:
		subject := g.st.subj.Heartbeat(a.Member, a.Inc)
		seq, ok := g.st.appendHB(subject, hbMessage{verdict: a.Verdict}, a.Fenced, a.Fence)
		if !ok {
			m.raw().VerdictDone(a.ID, 0, rawmember.ErrConflict)
			return
		}
		m.raw().VerdictDone(a.ID, seq, nil)
		g.heartbeatAppended(subject, seq, a.Verdict)
	case rawmember.ActReadLast:
		m.raw().HeartbeatResolved(g.st.lastMessage(g.st.subj.Heartbeat(a.Member, a.Inc)), true)
	case rawmember.ActWatch:
		// A watch starts with the subject's last message, as a
		// DeliverLastPerSubject consumer does.
		m.watch, m.watchMember, m.watchInc = g.st.subj.Heartbeat(a.Member, a.Inc), a.Member, a.Inc
		if last, ok := g.st.hb[m.watch]; ok {
			m.raw().VictimMessage(a.Member, a.Inc, last.seq, last.verdict, now)
		}
	case rawmember.ActUnwatch:
		m.watch, m.watchMember, m.watchInc = "", "", 0
	default:
		g.fatalf("member %s/%d asked for an unknown action %d", m.id, m.inc, a.Kind)
	}
}

// apply makes the contract's calls, synchronously, as parti.Member's
// dispatcher does: each revocation cancels its context, calls Revoked and
// reports the return (a partition to hand off is then let go of, and its
// release appended by the next step); each assignment calls Assigned. It
// reports whether the Handler was called.
func (m *Member) apply(rd rawmember.Ready) bool {
	g := m.g
	g.tb.Helper()
	for _, o := range rd.Reindexed {
		if w := m.owned[o.ID]; w != nil {
			w.a.Index = o.Index
		}
	}
	for _, c := range rd.Calls {
		if c.Revoke {
			a := parti.Assignment{Partition: c.Owned.ID, Index: c.Owned.Index, Token: c.Owned.Token}
			if o := m.owned[c.Owned.ID]; o != nil {
				o.cancel()
				a.Context = o.a.Context
			}
			delete(m.owned, c.Owned.ID)
			if m.h != nil {
				m.h.Revoked(a, parti.RevokeReason(c.Why))
			}
			m.drv.Returned(c)
			continue
		}
		if other := g.holder(c.Owned.ID, m); other != nil {
			g.fatalf("%s/%d is assigned %s while %s/%d's Handler still holds it\n%s",
				m.id, m.inc, c.Owned.ID, other.id, other.inc, g.dump())
		}
		ctx, cancel := context.WithCancel(m.ctx)
		a := parti.Assignment{Partition: c.Owned.ID, Index: c.Owned.Index, Token: c.Owned.Token, Context: ctx}
		m.owned[c.Owned.ID] = &owned{a: a, cancel: cancel}
		if m.h != nil {
			m.h.Assigned(a)
		}
	}
	return len(rd.Calls) > 0
}

// unsettled says why the member's Handler does not hold exactly what the
// log gives it, or "".
func (m *Member) unsettled() string {
	s := m.g.state
	if !m.raw().LeaseValid(m.g.now) {
		return fmt.Sprintf("%s/%d has no valid lease", m.id, m.inc)
	}
	mine := s.Owned(m.id, m.inc)
	if len(mine) != len(m.owned) {
		return fmt.Sprintf("%s/%d's Handler holds %d partitions, the log gives it %d", m.id, m.inc, len(m.owned), len(mine))
	}
	for _, i := range mine {
		o, ok := m.owned[s.Partitions[i]]
		if !ok || o.a.Token != s.Owners[i].FencingToken() {
			return fmt.Sprintf("%s/%d's Handler does not hold %s as the log gives it", m.id, m.inc, s.Partitions[i])
		}
	}
	return ""
}

// SetPartitions changes the partition set this member declares when it
// leads (as parti.Member.SetPartitions does): the leader appends the new
// declaration at its next step; Settle to see it through. Partitions left
// out are revoked with parti.RevokeDropped.
func (m *Member) SetPartitions(ids []string, weights []uint32) {
	m.g.tb.Helper()
	m.mustRun("SetPartitions")
	m.raw().SetPartitions(ids, weights, "")
}
