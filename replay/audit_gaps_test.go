package replay

import (
	"context"
	"testing"
	"time"

	"github.com/parti-io/parti/replay/replaytest"
)

// TestAuditReportsHeartbeatGaps: a group whose members stopped
// heartbeating for three minutes (the full-disk incident: the audit said
// CLEAN) gets a finding with the gap's times; a group that heartbeats
// throughout gets none.
func TestAuditReportsHeartbeatGaps(t *testing.T) {
	rec := replaytest.NewRecorder(replaytest.Base, 250*time.Millisecond)
	b, err := replaytest.NewBuilder("orders", rec)
	if err != nil {
		t.Fatal(err)
	}
	b.Claim("worker-0")
	b.Claim("worker-1")
	b.Heartbeats()
	b.Declare(replaytest.PartitionIDs(4), "sticky", 0)
	b.CloseWindow(100)
	b.Decide()
	for range 10 {
		b.Heartbeats()
	}
	rec.Advance(3 * time.Minute) // nothing lands: the stream refuses writes
	b.Heartbeats()
	b.Heartbeats()
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	src := memSource(t, rec.Records)
	r, err := Audit(context.Background(), src, AuditOptions{MaxHeartbeatGap: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.HeartbeatGaps) != 1 {
		t.Fatalf("%d heartbeat gaps: %+v; want 1", len(r.HeartbeatGaps), r.HeartbeatGaps)
	}
	g := r.HeartbeatGaps[0]
	if d := g.To.Time.Sub(g.From.Time); d < 3*time.Minute || d > 3*time.Minute+time.Second || g.Open {
		t.Errorf("gap %+v; want about 3 minutes, closed", g)
	}
	if !r.Clean {
		t.Errorf("a heartbeat gap is a finding, not a violation: %+v", r.Violations)
	}
	// The same history without the bound, and a bound above the gap.
	for _, max := range []time.Duration{0, 4 * time.Minute} {
		r, err := Audit(context.Background(), src, AuditOptions{MaxHeartbeatGap: max})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.HeartbeatGaps) != 0 {
			t.Errorf("bound %v: gaps %+v; want none", max, r.HeartbeatGaps)
		}
	}
}

// TestAuditHeartbeatGapOpenAtTheEnd: a history that ends in silence ends
// with an open gap.
func TestAuditHeartbeatGapOpenAtTheEnd(t *testing.T) {
	rec := replaytest.NewRecorder(replaytest.Base, 250*time.Millisecond)
	b, err := replaytest.NewBuilder("orders", rec)
	if err != nil {
		t.Fatal(err)
	}
	b.Claim("worker-0")
	b.Heartbeats()
	rec.Advance(time.Minute)
	b.Claim("worker-1") // a log record, long after the last heartbeat
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	r, err := Audit(context.Background(), memSource(t, rec.Records), AuditOptions{MaxHeartbeatGap: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.HeartbeatGaps) != 1 || !r.HeartbeatGaps[0].Open {
		t.Fatalf("gaps %+v; want one open at the end", r.HeartbeatGaps)
	}
}
