package test

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/replay"
)

// A group with history migrates to a new-generation stream (DESIGN rule 7):
// its members close for a restart, projection.Migrate writes the genesis,
// the same IDs join the new group and own exactly the partitions they owned
// (zero moves), with fencing tokens above every token of the old
// generation, nobody's ownership overlaps across the generations, and the
// audit of the new stream, checked against the old one, is clean.
func TestMigrateToANewGenerationMovesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())

	// The old generation: a cold start, a scale-up and a restart.
	old := newFleet(t, js, "mig", 48)
	coldStart(t, ctx, old, 3)
	old.join(ctx, "w03")
	old.waitSettled(60 * time.Second)
	if err := old.member("w01").Close(ctx); err != nil {
		t.Fatal(err)
	}
	old.join(ctx, "w01")
	old.waitSettled(60 * time.Second)
	before := old.owners()
	var oldMax uint64
	for _, m := range old.all() {
		for _, a := range m.Assigned() {
			oldMax = max(oldMax, a.Token.Seq)
		}
	}

	// 1. Close every member for a restart: the old log stops.
	for _, m := range old.all() {
		if err := m.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// 2. Migrate.
	res, err := projection.Migrate(ctx, js, projection.MigrateConfig{From: "mig", To: "mig-g2", By: "test", Note: "rule 7"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("migrated: %d old log records up to seq %d, %d bytes of state in %d part(s) at seq %d; carried %v",
		res.Records, res.UpTo, res.Bytes, res.Parts, res.GenesisFirst, res.Members)

	// 3. The same IDs join the new generation, all at once.
	next := newFleet(t, js, "mig-g2", 48)
	next.rec, next.gen = old.rec, old.gen // one recorder: overlaps across generations show
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, id := range []string{"w00", "w01", "w02", "w03"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := next.tryJoin(ctx, id); err != nil {
				errs <- fmt.Errorf("join %s: %w", id, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	next.waitSettled(60 * time.Second)
	after := next.owners()
	if n := moved(before, after); n != 0 {
		t.Fatalf("%d partitions moved across the migration:\nbefore %v\nafter  %v", n, before, after)
	}
	for _, m := range next.all() {
		for _, a := range m.Assigned() {
			if a.Token.Seq <= res.UpTo || a.Token.Seq <= oldMax {
				t.Fatalf("%s owns %s with token %s, not above the old generation's (log up to %d, highest token %d)", m.ID(), a.Partition, a.Token, res.UpTo, oldMax)
			}
		}
	}
	leases := map[string]func() time.Duration{}
	old.mu.Lock()
	maps.Copy(leases, old.leases)
	old.mu.Unlock()
	next.mu.Lock()
	maps.Copy(leases, next.leases)
	next.mu.Unlock()
	next.rec.checkNoOverlap(t, leases)

	// 4. The audit of the new stream, against the old one.
	src, err := replay.NewStreamSource(ctx, js, "mig-g2")
	if err != nil {
		t.Fatal(err)
	}
	prev, err := replay.NewStreamSource(ctx, js, "mig")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := replay.Audit(ctx, src, replay.AuditOptions{MaxUnowned: 30 * time.Second, Previous: prev})
	if err != nil {
		t.Fatal(err)
	}
	if g := rep.Genesis; !rep.Clean || g == nil || !g.Applied || !g.Matches || g.UpTo != res.UpTo {
		t.Fatalf("audit of the new generation: clean %v, genesis %+v, violations %+v", rep.Clean, g, rep.Violations)
	}
	if _, err := projection.Migrate(ctx, js, projection.MigrateConfig{From: "mig", To: "mig-g2"}); err == nil {
		t.Fatal("migrated again into a stream with records")
	}
}
