package test

import (
	"context"
	"testing"
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/natstest"
)

// Issue 12 ("also found"): a restart with the same ID before the old
// incarnation's expiry had two judges of that incarnation (its ring judge
// and the waiting claimant), and each appended the removal that follows the
// verdict: the log held two member-removed records for one crash (the second
// ignored by the fold, counted by the audit). The cause: the second judge
// saw the first verdict, which moved its fence to the verdict's sequence, and
// its own verdict, fenced there, was accepted too. Exactly one verdict and
// one removal are appended.
func TestSameIDRestartAppendsOneRemoval(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "onerm", 16)
	coldStart(t, ctx, f, 3)
	for round := range 2 {
		victim := f.all()[1+round]
		id, inc := victim.ID(), victim.Incarnation()
		victim.Stop() // a crash: no leave, no close
		f.drop(id)
		nm := f.join(ctx, id) // returns once granted: the old incarnation was removed
		if nm.Incarnation() <= inc {
			t.Fatalf("new incarnation %d, old %d", nm.Incarnation(), inc)
		}
		f.waitSettled(60 * time.Second)

		recs := groupLog(t, js, f.group)
		var removals, verdicts []events.Record
		var lastHB time.Time
		hb := events.Subjects{Group: f.group}.Heartbeat(id, inc)
		for _, r := range recs {
			if rm, ok := r.Event.(*events.MemberRemoved); ok && rm.Member == id && rm.Incarnation == inc {
				removals = append(removals, r)
			}
			if _, ok := r.Event.(*events.Heartbeat); ok && r.Subject == hb {
				lastHB = r.Time
			}
			if v, ok := r.Event.(*events.ExpiryVerdict); ok && v.Member == id && v.Incarnation == inc {
				verdicts = append(verdicts, r)
			}
		}
		if len(removals) != 1 || len(verdicts) != 1 {
			for _, r := range append(verdicts, removals...) {
				t.Logf("seq %d at %s: %+v", r.Seq, r.Time.Format("15:04:05.000"), r.Event)
			}
			t.Fatalf("round %d: %d verdicts and %d member-removed records for %s/%d, want 1 each", round, len(verdicts), len(removals), id, inc)
		}
		if !lastHB.IsZero() {
			t.Logf("round %d: %s/%d removed %v after its last heartbeat (expiry %v); verdict %+v", round, id, inc,
				removals[0].Time.Sub(lastHB).Round(time.Millisecond), f.base.Timings.Expiry, verdicts[0].Event)
		}
	}
}
