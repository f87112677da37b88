package test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/internal/faultproxy"
	"github.com/parti-io/parti/internal/natstest"
)

// A member cut off from NATS stops acting on its partitions (its lease runs
// out) before the group expires it and hands them on; when the network heals
// it learns it was expired and rejoins as a new incarnation.
func TestNetworkCutSelfFences(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	proxy, err := faultproxy.Start(s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	_, direct := natstest.Connect(t, s.ClientURL())
	_, cut := natstest.Connect(t, proxy.URL())
	f := newFleet(t, direct, "netcut", 48)
	f.jsFor = func(id string) jetstream.JetStream {
		if id == "w01" {
			return cut
		}
		return direct
	}
	coldStart(t, ctx, f, 3)
	victim := f.member("w01")
	inc := victim.Incarnation()
	var mine []string
	for p, o := range f.owners() {
		if o == "w01" {
			mine = append(mine, p)
		}
	}
	if len(mine) == 0 {
		t.Fatal("the victim owns nothing")
	}

	proxy.SetMode(faultproxy.Blackhole)
	cutAt := time.Now()
	waitFor(t, 30*time.Second, "the victim's partitions to be re-owned", func() bool {
		s := f.member("w00").State()
		for _, p := range mine {
			i, ok := s.PartitionIndex(p)
			if !ok {
				return false
			}
			if o := s.Owners[i].Owner; o == "" || o == "w01" {
				return false
			}
		}
		return true
	})
	t.Logf("re-owned %v after the cut (expiry %v)", time.Since(cutAt), f.base.Timings.Expiry)
	if n := len(victim.Assigned()); n != 0 {
		t.Fatalf("the cut-off member still acts on %d partitions after they were handed on", n)
	}
	f.checkNoOverlap()

	proxy.SetMode(faultproxy.Pass)
	proxy.Reset()
	waitFor(t, 60*time.Second, "the victim to rejoin as a new incarnation", func() bool {
		return victim.Incarnation() > inc
	})
	f.waitSettled(60 * time.Second)
	if len(victim.Assigned()) == 0 {
		t.Fatal("the rejoined member got nothing")
	}
	f.checkNoOverlap()
}
