package test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/projection"
)

// A steady group appends nothing to its log, yet its snapshot must not
// expire for good: the leader writes it again before its TTL runs out, so a
// late joiner still starts from a snapshot instead of folding the whole
// history.
func TestSteadyLeaderRefreshesItsSnapshot(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, js := natstest.Connect(t, natstest.Server(t).ClientURL())
	f := newFleet(t, js, "refresh", 16)
	f.base.SnapshotEvery = 4
	f.base.SnapshotTTL = 2 * time.Second
	coldStart(t, ctx, f, 3)
	stream, err := js.Stream(ctx, "PARTI_refresh")
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := events.NewSubjects("refresh")
	lastSnap := func() uint64 {
		m, err := stream.GetLastMsgForSubject(ctx, subj.Snapshot())
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return m.Sequence
	}
	logLen := func() uint64 {
		m, err := stream.GetLastMsgForSubject(ctx, subj.Log())
		if err != nil {
			t.Fatal(err)
		}
		return m.Sequence
	}
	// Three generations of snapshots while the log stands still: each TTL
	// (2 s) would have removed the one before.
	var seen []uint64
	logAt := logLen()
	waitFor(t, 30*time.Second, "three snapshots written in a steady group", func() bool {
		if s := lastSnap(); s != 0 && (len(seen) == 0 || s != seen[len(seen)-1]) {
			seen = append(seen, s)
		}
		return len(seen) >= 3
	})
	if l := logLen(); l != logAt {
		t.Fatalf("the log moved (%d → %d): the group was not steady", logAt, l)
	}
	// A late joiner folds from the snapshot: none of the log records
	// before it.
	var folded int
	p, err := projection.Start(ctx, js, projection.Config{Group: "refresh",
		OnRecord: func(events.Record, decider.Outcome) { folded++ }})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitFor(ctx, logAt); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	if folded != 0 {
		t.Fatalf("the late joiner folded %d log records; the snapshot should have covered all of them", folded)
	}
	t.Logf("snapshots at %v while the log stayed at %d", seen, logAt)
}
