package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/projection"
)

// A rolling restart leaves no consumers behind. A member tails the log and
// its judge watches one heartbeat subject, each with an ordered consumer;
// the judge rewatches at every ring change. Consumers that were only
// stopped stayed on the server until a minute of inactivity, and a stream
// holds 1,000 by default: a rolling restart of a large group hit the limit
// ("maximum consumers limit reached", issue 17's scale runs). Closed
// members and changed watches must delete theirs.
func TestRollingRestartLeavesNoConsumers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "leftover", 16)
	const n = 3
	for i := range n {
		f.join(ctx, fmt.Sprintf("w%d", i))
	}
	f.waitSettled(20 * time.Second)
	st, err := js.Stream(ctx, projection.StreamName("leftover"))
	if err != nil {
		t.Fatal(err)
	}
	consumers := func() int {
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Consumers
	}
	// Two per member (its tail and its judge's watch); a member alone in
	// its ring judges nobody, so fewer is fine, more is a leak.
	limit := 2 * n
	for round := range 2 {
		for i := range n {
			id := fmt.Sprintf("w%d", i)
			if err := f.member(id).Close(ctx); err != nil {
				t.Fatalf("round %d: close %s: %v", round, id, err)
			}
			f.drop(id)
			f.join(ctx, id)
			f.waitSettled(20 * time.Second)
		}
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("at most %d consumers on the stream after 6 restarts", limit), func() bool {
		return consumers() <= limit
	})
}
