package test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/parti-io/parti/internal/natstest"
)

func coldStart(t *testing.T, ctx context.Context, f *fleet, n int) time.Duration {
	t.Helper()
	f.base.ExpectedMembers = n
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.tryJoin(ctx, fmt.Sprintf("w%02d", i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("cold start: %v", err)
	}
	f.waitSettled(60 * time.Second)
	f.base.ExpectedMembers = 0
	return time.Since(start)
}

func assertBalanced(t *testing.T, f *fleet) {
	t.Helper()
	counts := map[string]int{}
	for _, o := range f.owners() {
		if o == "" {
			t.Fatal("unowned partition in a settled fleet")
		}
		counts[o]++
	}
	lo, hi := math.MaxInt, 0
	for _, c := range counts {
		lo, hi = min(lo, c), max(hi, c)
	}
	if hi-lo > 1 {
		t.Fatalf("unbalanced: %v", counts)
	}
}

func TestColdStartScaleUpAndLeave(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "cold", 1024)
	took := coldStart(t, ctx, f, 10)
	t.Logf("cold start of 10 members over 1024 partitions: %v", took)
	assertBalanced(t, f)

	before := f.owners()
	start := time.Now()
	f.join(ctx, "w10")
	f.waitSettled(60 * time.Second)
	after := f.owners()
	minimum := 1024 / 11 // the newcomer's floor share; nothing else must move
	got := moved(before, after)
	t.Logf("scale-up 10→11 moved %d partitions (minimum %d) in %v", got, minimum, time.Since(start))
	if float64(got) > 1.1*float64(minimum) {
		t.Fatalf("scale-up moved %d, more than 1.1 × the minimum %d", got, minimum)
	}
	assertBalanced(t, f)

	leaver := f.member("w03")
	if err := leaver.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	f.drop("w03")
	f.waitSettled(60 * time.Second)
	for p, o := range f.owners() {
		if o == "w03" {
			t.Fatalf("partition %s still owned by the member that left", p)
		}
	}
	assertBalanced(t, f)
	f.checkNoOverlap()
}

func TestCrashAndLeaderCrashAreTakenOver(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "crash", 256)
	coldStart(t, ctx, f, 5)
	expiry := f.base.Timings.Expiry

	for _, which := range []string{"member", "leader"} {
		var victim string
		for _, m := range f.all() {
			if m.IsLeader() == (which == "leader") {
				victim = m.ID()
				break
			}
		}
		start := time.Now()
		f.member(victim).Stop() // no leave: a crash
		f.drop(victim)
		f.waitSettled(expiry + 30*time.Second)
		took := time.Since(start)
		t.Logf("%s crash: partitions re-owned after %v (expiry %v)", which, took, expiry)
		for p, o := range f.owners() {
			if o == victim {
				t.Fatalf("partition %s still owned by crashed %s", p, victim)
			}
		}
	}
	f.checkNoOverlap()
}

func TestRollingRestartMovesNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "rolling", 128)
	coldStart(t, ctx, f, 4)
	before := f.owners()
	for _, m := range f.all() {
		id := m.ID()
		if err := m.Close(ctx); err != nil {
			t.Fatal(err)
		}
		f.drop(id)
		nm := f.join(ctx, id)
		if nm.Incarnation() < 2 {
			t.Fatalf("%s rejoined as incarnation %d", id, nm.Incarnation())
		}
		f.waitSettled(60 * time.Second)
	}
	if n := moved(before, f.owners()); n != 0 {
		t.Fatalf("rolling restart moved %d partitions", n)
	}
	f.checkNoOverlap()
}

func TestCrashRestartWithSameIDHandsOverCleanly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "crashrestart", 64)
	coldStart(t, ctx, f, 3)
	victim := f.all()[1]
	id, inc := victim.ID(), victim.Incarnation()
	victim.Stop()
	f.drop(id)
	nm := f.join(ctx, id) // returns once granted: after the old incarnation was expired
	if nm.Incarnation() <= inc {
		t.Fatalf("new incarnation %d, old %d", nm.Incarnation(), inc)
	}
	f.waitSettled(60 * time.Second)
	if got := len(nm.Assigned()); got == 0 {
		t.Fatal("restarted member got nothing back")
	}
	f.checkNoOverlap()
}

func TestStreamOutageLongerThanExpiryExpiresNobody(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := natstest.Options(t.TempDir())
	opts.Port = natstest.FreePort(t)
	s := natstest.Start(t, opts)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "outage", 64)
	coldStart(t, ctx, f, 4)
	incs := map[string]uint64{}
	for _, m := range f.all() {
		incs[m.ID()] = m.Incarnation()
	}
	before := f.owners()

	s.Shutdown()
	s.WaitForShutdown()
	// Fault injection, not synchronisation: the stream stays away for twice
	// the expiry.
	<-time.After(2 * f.base.Timings.Expiry)
	natstest.Start(t, opts.Clone())
	f.waitSettled(60 * time.Second)

	for _, m := range f.all() {
		if m.Incarnation() != incs[m.ID()] {
			t.Fatalf("%s was expired by the outage: incarnation %d → %d", m.ID(), incs[m.ID()], m.Incarnation())
		}
	}
	if n := moved(before, f.owners()); n != 0 {
		t.Fatalf("the outage moved %d partitions", n)
	}
	f.checkNoOverlap()
}
