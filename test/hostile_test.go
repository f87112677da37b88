package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/internal/testhooks"
	"github.com/parti-io/parti/projection"
)

// junkBodies returns, for a member's heartbeat subject, the bodies a buggy
// or confused process with a member's permissions might publish there raw
// (no fence header): garbage, an envelope of an unknown type, a heartbeat of
// an unknown protocol version, a well-formed event of another type, another
// process's heartbeat, and verdicts naming another incarnation of the member
// and another member (issue 12, items 1, 4, 5, 6).
func junkBodies(t *testing.T, member string, inc uint64) [][]byte {
	t.Helper()
	enc := func(ev events.Event) []byte {
		b, err := events.Encode(events.MaxVersion, ev)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return [][]byte{
		[]byte("garbage{"),
		[]byte(`{"v":1,"t":999,"e":{}}`),
		[]byte(fmt.Sprintf(`{"v":%d,"t":1,"e":{"n":"x"}}`, events.MaxVersion+1)),
		enc(&events.MemberLeft{Member: member, Incarnation: inc}),
		enc(&events.Heartbeat{Nonce: "someone-else"}),
		enc(&events.ExpiryVerdict{Member: member, Incarnation: inc + 7, Judge: "x", JudgeInc: 1}),
		enc(&events.ExpiryVerdict{Member: member + "-other", Incarnation: inc, Judge: "x", JudgeInc: 1}),
	}
}

// Issue 12, item 1: one junk message on a crashed member's heartbeat subject
// kept it live for ever (the judge's verdict was fenced on the victim's last
// heartbeat, no longer the subject's last message, and refused every time).
// Now the verdict fences on the subject's last sequence whatever it holds,
// and junk does not restart the judge's count: the crashed member is removed
// within the expiry plus a few rounds, and the junk is counted.
func TestJunkOnCrashedMembersHeartbeatSubjectDoesNotKeepItLive(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "junkdead", 32)
	coldStart(t, ctx, f, 2)
	subj, _ := events.NewSubjects(f.group)
	var victim, judge *parti.Member
	for _, m := range f.all() {
		if m.IsLeader() {
			judge = m
		} else {
			victim = m
		}
	}
	if victim == nil || judge == nil {
		t.Fatal("no leader and non-leader")
	}
	id, inc := victim.ID(), victim.Incarnation()
	victim.Stop() // no leave: a crash
	f.drop(id)
	start := time.Now()
	for _, body := range junkBodies(t, id, inc) {
		if _, err := js.Publish(ctx, subj.Heartbeat(id, inc), body); err != nil {
			t.Fatal(err)
		}
	}
	expiry := f.base.Timings.Expiry
	f.waitSettled(expiry + 20*time.Second)
	t.Logf("crashed %s/%d with junk on its subject removed after %v (expiry %v)", id, inc, time.Since(start), expiry)
	for p, o := range f.owners() {
		if o == id {
			t.Fatalf("partition %s still owned by crashed %s", p, id)
		}
	}
	if isLive(judge.State(), id, inc) {
		t.Fatalf("%s/%d still live in the fold", id, inc)
	}
	if judge.JunkSeen() == 0 {
		t.Fatal("the judge counted no junk")
	}
	f.checkNoOverlap()
}

// Issue 12, items 2, 5, 6 and 8: junk published every 100 ms on a live
// member's heartbeat subject — garbage, other types and versions, another
// process's heartbeat, verdicts naming other incarnations, and raw copies of
// the member's own old heartbeats — costs it neither its lease nor its
// incarnation. Before, its next heartbeat was refused, it adopted the junk's
// sequence but waited a whole interval, and its lease lapsed (or a foreign
// heartbeat or an old verdict stopped it outright).
func TestJunkFloodCostsALiveMemberNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "junklive", 32)
	coldStart(t, ctx, f, 2)
	subj, _ := events.NewSubjects(f.group)
	before := f.owners()
	intervals := f.rec.open()

	// Flood both members' subjects: each is the other's judge, so
	// this checks the judge side too.
	type target struct {
		id   string
		inc  uint64
		junk [][]byte
	}
	var targets []target
	for _, m := range f.all() {
		targets = append(targets, target{m.ID(), m.Incarnation(), junkBodies(t, m.ID(), m.Incarnation())})
	}
	flood := 4 * f.base.Timings.Expiry
	end := time.Now().Add(flood)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for i := 0; time.Now().Before(end); i++ {
		<-tick.C
		for _, tg := range targets {
			subject := subj.Heartbeat(tg.id, tg.inc)
			body := tg.junk[i%len(tg.junk)]
			if i%(len(tg.junk)+1) == len(tg.junk) {
				// A raw copy of the member's own latest heartbeat
				// (item 8): a valid body without the fence header.
				if st, err := js.Stream(ctx, projection.StreamName(f.group)); err == nil {
					if raw, err := st.GetLastMsgForSubject(ctx, subject); err == nil {
						body = raw.Data
					}
				}
			}
			if _, err := js.Publish(ctx, subject, body); err != nil {
				t.Fatal(err)
			}
			sent++
		}
	}
	t.Logf("published %d junk messages over %v", sent, flood)
	var junk uint64
	for _, tg := range targets {
		m := f.member(tg.id)
		if err := m.Err(); err != nil {
			t.Fatalf("%s stopped: %v", tg.id, err)
		}
		if m.Incarnation() != tg.inc || !isLive(m.State(), tg.id, tg.inc) {
			t.Fatalf("%s: incarnation %d live %v, want %d live", tg.id, m.Incarnation(), isLive(m.State(), tg.id, tg.inc), tg.inc)
		}
		junk += m.JunkSeen()
	}
	if n := f.rec.open(); n != intervals || moved(before, f.owners()) != 0 {
		t.Fatalf("ownership changed under junk: %d open intervals (was %d), %d moved", n, intervals, moved(before, f.owners()))
	}
	if got := intervalsTotal(f.rec); got != intervals {
		t.Fatalf("%d ownership intervals after the flood, want %d: a lease was lost and re-granted", got, intervals)
	}
	if junk == 0 {
		t.Fatal("no member counted junk")
	}
	f.checkNoOverlap()
}

// intervalsTotal counts every ownership interval recorded, open or ended.
func intervalsTotal(r *recorder) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ivs := range r.ivs {
		n += len(ivs)
	}
	return n
}

// isLive reports whether incarnation inc of id is a live member in s.
func isLive(s *decider.State, id string, inc uint64) bool {
	for _, m := range s.LiveMembers() {
		if m.ID == id && m.Incarnation == inc {
			return true
		}
	}
	return false
}

// Issue 12, item 3: a force-expire of a live member used to remove it at
// once, so the leader handed its partitions out while the member's lease was
// still valid. Now it goes through a forced verdict and the removal follows
// only after the expiry: when any fold shows the member gone, the lease it
// held when the operator acted has run out, and nobody overlaps.
func TestForceExpireOfALiveMemberWaitsForItsLease(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "forced", 32)
	coldStart(t, ctx, f, 3)
	var victim, op *parti.Member
	for _, m := range f.all() {
		switch {
		case m.IsLeader():
			op = m
		case victim == nil:
			victim = m
		}
	}
	id, inc := victim.ID(), victim.Incarnation()
	lease := testhooks.LeaseDeadline(victim)
	if lease <= f.rec.clk.Now() {
		t.Fatalf("%s holds no valid lease before the force-expire", id)
	}
	start := time.Now()
	if err := op.Operate(ctx, events.OperatorAction{Action: events.OpForceExpire, Member: id, By: "test"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f.base.Timings.Expiry+20*time.Second, "the forced member to be removed", func() bool {
		return !isLive(op.State(), id, inc)
	})
	t.Logf("force-expired %s/%d removed after %v (expiry %v)", id, inc, time.Since(start), f.base.Timings.Expiry)
	if now := f.rec.clk.Now(); now <= lease {
		t.Fatalf("%s/%d removed %v before the lease it held when the operator acted ran out", id, inc, lease-now)
	}
	f.waitSettled(30 * time.Second)
	f.checkNoOverlap()
}
