package test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/internal/faultproxy"
	"github.com/parti-io/parti/internal/natstest"
)

// TestChaos runs a fleet whose members each reach the server through their
// own fault-injecting proxy, and injects random faults: crashes and
// restarts with the same ID, network cuts longer and shorter than the expiry,
// delays, connection resets, graceful leaves and rejoins, and one outage of
// the whole stream longer than the expiry. After every fault the group must
// settle within its bound; at the end no two ownership intervals overlap and
// every member holds the identical state at the same sequence.
//
// CHAOS_SEED replays a run; CHAOS_DURATION sets its length (default 20s;
// `make chaos` runs 5 minutes).
func TestChaos(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	dur := 20 * time.Second
	if d := os.Getenv("CHAOS_DURATION"); d != "" {
		var err error
		if dur, err = time.ParseDuration(d); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("chaos seed %d (rerun with CHAOS_SEED=%d), duration %v", seed, seed, dur)
	rng := rand.New(rand.NewSource(seed))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	opts := natstest.Options(t.TempDir())
	opts.Port = natstest.FreePort(t)
	srv := natstest.Start(t, opts)
	_, direct := natstest.Connect(t, srv.ClientURL())
	proxies := map[string]*faultproxy.Proxy{}
	conns := map[string]jetstream.JetStream{}
	ids := []string{"w00", "w01", "w02", "w03", "w04", "w05"}
	for _, id := range ids {
		p, err := faultproxy.Start(srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		proxies[id] = p
		_, conns[id] = natstest.Connect(t, p.URL())
	}
	f := newFleet(t, direct, "chaos", 64)
	f.jsFor = func(id string) jetstream.JetStream { return conns[id] }
	coldStart(t, ctx, f, len(ids))

	// The settle bound after a fault heals: window + expiry + a decision
	// round, with room for these machines' stalls.
	bound := f.base.Window + f.base.Timings.Expiry + 20*time.Second
	counts := map[string]int{}
	down := map[string]bool{}
	worst := time.Duration(0)
	settle := func(what string) {
		t.Helper()
		start := time.Now()
		f.waitSettled(bound)
		if d := time.Since(start); d > worst {
			worst = d
		}
		counts[what]++
	}
	end := time.Now().Add(dur)
	outageDone := false
	for time.Now().Before(end) {
		id := ids[rng.Intn(len(ids))]
		switch fault := rng.Intn(7); {
		case fault == 0 && !down[id]:
			// crash, then restart with the same ID
			f.member(id).Stop()
			f.drop(id)
			f.join(ctx, id)
			settle("crash-restart")
		case fault == 1:
			// a cut shorter than the expiry: nobody is expired
			proxies[id].SetMode(faultproxy.Blackhole)
			hold(rng, f.base.Timings.Expiry/3)
			proxies[id].SetMode(faultproxy.Pass)
			proxies[id].Reset()
			settle("short-cut")
		case fault == 2:
			// a cut longer than the expiry: expired, rejoins
			proxies[id].SetMode(faultproxy.Blackhole)
			hold(rng, 2*f.base.Timings.Expiry)
			proxies[id].SetMode(faultproxy.Pass)
			proxies[id].Reset()
			settle("long-cut")
		case fault == 3:
			proxies[id].SetDelay(time.Duration(20+rng.Intn(150)) * time.Millisecond)
			hold(rng, 2*time.Second)
			proxies[id].SetDelay(0)
			settle("delay")
		case fault == 4:
			proxies[id].Reset()
			settle("reset")
		case fault == 5:
			if err := f.member(id).Leave(ctx); err != nil {
				t.Fatal(err)
			}
			f.drop(id)
			f.join(ctx, id)
			settle("leave-rejoin")
		case fault == 6 && !outageDone:
			outageDone = true
			srv.Shutdown()
			srv.WaitForShutdown()
			hold(rng, 2*f.base.Timings.Expiry)
			srv = natstest.Start(t, opts.Clone())
			settle("stream-outage")
		}
		f.checkNoOverlap()
		if t.Failed() {
			t.Fatalf("seed %d: overlap after %v", seed, counts)
		}
	}
	// Every member holds the identical state at the same sequence.
	var hashes []string
	var seq uint64
	for _, m := range f.all() {
		s := m.State()
		_, h, err := decider.Snapshot(s)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, fmt.Sprintf("%s@%d", h, s.LastSeq))
		seq = s.LastSeq
	}
	slices.Sort(hashes)
	if len(slices.Compact(slices.Clone(hashes))) != 1 {
		t.Fatalf("seed %d: members disagree at the end: %v", seed, hashes)
	}
	t.Logf("seed %d: faults %v; worst settle %v; final log sequence %d", seed, counts, worst, seq)
}

// hold keeps a fault in place for up to max (fault injection, not
// synchronisation).
func hold(rng *rand.Rand, max time.Duration) {
	<-time.After(max/2 + time.Duration(rng.Int63n(int64(max/2)+1)))
}
