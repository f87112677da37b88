package test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/jsretry"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/liveness"
	"github.com/parti-io/parti/projection"
)

// electionTimings expire at 1.5 s (the fast profile's expiry) but keep the
// 1 s margin integration tests need; the lease sits strictly below
// expiry − margin (and above heartbeat + ack budget).
func electionTimings() liveness.Timings {
	return liveness.Timings{
		Heartbeat: 250 * time.Millisecond, Expiry: 1500 * time.Millisecond, Lease: 480 * time.Millisecond,
		Margin: time.Second, AckBudget: 200 * time.Millisecond, ReconnectWait: 250 * time.Millisecond,
	}
}

// Two would-be leaders append decisions fenced on the same log position
// through different servers of an R3 cluster: exactly one lands, every time.
func TestRacingFencedAppendsOnR3LandExactlyOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := natstest.NewCluster(t)
	_, js0 := natstest.Connect(t, c.Servers[0].ClientURL())
	_, js1 := natstest.Connect(t, c.Servers[1].ClientURL())
	subj, _ := events.NewSubjects("race")
	if _, err := projection.Provision(ctx, js0, projection.StreamConfig{Group: "race", Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	apps := []*projection.Appender{projection.NewAppender(js0, subj), projection.NewAppender(js1, subj)}
	// Right after the create, the replicated stream may still be electing
	// its leader, and the other server may not yet know of the leader's
	// interest in the subject ("no response from stream"): each appender
	// makes one setup append, retried, before the race.
	var last uint64
	for i, app := range apps {
		err := jsretry.Do(ctx, slog.Default(), time.Minute, nil, func() error {
			var err error
			last, err = app.Append(ctx, &events.WindowClosed{By: fmt.Sprintf("setup%d", i)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	const rounds = 30
	for round := range rounds {
		var wg sync.WaitGroup
		seqs := make([]uint64, 2)
		errs := make([]error, 2)
		for i, app := range apps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := &events.AssignmentDecided{Generation: uint64(round + 1), BasedOn: last, Leader: fmt.Sprintf("l%d", i), LeaderInc: 1, Reason: "race"}
				seqs[i], errs[i] = app.AppendFenced(ctx, d, last)
			}()
		}
		wg.Wait()
		won := 0
		for i := range 2 {
			switch {
			case errs[i] == nil:
				won++
				last = seqs[i]
			case errors.Is(errs[i], projection.ErrConflict):
			default:
				t.Fatalf("round %d: append %d: %v", round, i, errs[i])
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d fenced appends landed, want exactly 1", round, won)
		}
	}
	// The log holds the setup records and exactly one decision per round.
	st, err := js0.Stream(ctx, projection.StreamName("race"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != rounds+uint64(len(apps)) {
		t.Fatalf("stream holds %d messages, want %d", info.State.Msgs, rounds+len(apps))
	}
}

// A fleet on an R3 stream survives losing a server, the stream's leader
// included: the election stall is longer than the expiry, and nobody is
// expired for it; the group then still changes (a join settles).
func TestR3SurvivesLosingTheStreamLeader(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := natstest.NewCluster(t)
	_, js := natstest.Connect(t, c.URLs())
	f := newFleet(t, js, "r3", 64)
	f.base.Replicas = 3
	f.base.Timings = electionTimings()
	f.base.OpTimeout = time.Second
	coldStart(t, ctx, f, 4)
	incs := map[string]uint64{}
	for _, m := range f.all() {
		incs[m.ID()] = m.Incarnation()
	}
	before := f.owners()

	st, err := js.Stream(ctx, projection.StreamName("r3"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := -1
	for i, s := range c.Servers {
		if info.Cluster != nil && s.Name() == info.Cluster.Leader {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatalf("no stream leader in %+v", info.Cluster)
	}
	c.Stop(leader)
	waitFor(t, 60*time.Second, "a new stream leader", func() bool {
		ictx, icancel := context.WithTimeout(ctx, time.Second)
		defer icancel()
		i, err := st.Info(ictx)
		return err == nil && i.Cluster != nil && i.Cluster.Leader != "" && i.Cluster.Leader != info.Cluster.Leader
	})
	f.join(ctx, "late")
	f.waitSettled(60 * time.Second)
	for _, m := range f.all() {
		if want, ok := incs[m.ID()]; ok && m.Incarnation() != want {
			t.Fatalf("%s was expired by the election: incarnation %d → %d", m.ID(), want, m.Incarnation())
		}
	}
	kept := 0
	after := f.owners()
	for p, o := range before {
		if after[p] == o {
			kept++
		}
	}
	if kept < len(before)*3/4 {
		t.Fatalf("only %d of %d partitions kept their owner across the election and one join", kept, len(before))
	}
	c.Restart(leader)
	f.checkNoOverlap()
}

// Garbage on the group's subjects is skipped and counted; the state and the
// group are unaffected.
func TestGarbageIsSkippedAndCounted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "garbage", 32)
	coldStart(t, ctx, f, 3)
	before := f.owners()
	incs := map[string]uint64{}
	for _, m := range f.all() {
		incs[m.ID()] = m.Incarnation()
	}
	subj, _ := events.NewSubjects("garbage")
	bodies := [][]byte{
		[]byte("not json"),
		[]byte(`{"v":1,"t":4242,"e":{}}`),
		[]byte(`{"v":1,"t":11,"e":[1,2]}`),
		[]byte(`{"v":1,"t":10,"e":{"gen":1,"moves":"x"}}`),
	}
	for _, b := range bodies {
		if _, err := js.Publish(ctx, subj.Log(), b); err != nil {
			t.Fatal(err)
		}
	}
	// Garbage on a heartbeat subject that a judge watches.
	for _, m := range f.all() {
		if _, err := js.Publish(ctx, subj.Heartbeat(m.ID(), m.Incarnation()), []byte("\x00\x01garbage"), jetstream.WithMsgTTL(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "every member to count the garbage", func() bool {
		for _, m := range f.all() {
			if m.State().Counters.Skipped < uint64(len(bodies)) {
				return false
			}
		}
		return true
	})
	// Let every member heartbeat past the junk on its own subject.
	deadline := time.Now().Add(3 * f.base.Timings.Heartbeat)
	waitFor(t, time.Minute, "a few heartbeat intervals", func() bool { return time.Now().After(deadline) })
	f.waitSettled(30 * time.Second)
	if n := moved(before, f.owners()); n != 0 {
		t.Fatalf("garbage moved %d partitions", n)
	}
	for _, m := range f.all() {
		if m.Incarnation() != incs[m.ID()] {
			t.Fatalf("junk on %s's heartbeat subject ended its incarnation %d (now %d)", m.ID(), incs[m.ID()], m.Incarnation())
		}
	}
	f.join(ctx, "after-garbage")
	f.waitSettled(30 * time.Second)
	f.checkNoOverlap()
}
