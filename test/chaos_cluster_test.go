package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/projection"
)

// TestChaosCluster is TestChaos on a three-server cluster: the group's
// stream, the user's stream and the helper's streams have three
// replicas, and each member reaches every server through its own
// fault-injecting proxies. Besides the member faults of TestChaos it shuts
// servers down and restarts them: any server, the group stream's leader
// (until another is elected), and two servers at once, the leader among
// them, for longer than the expiry (the whole stream unavailable: nobody
// may be expired for it). The timings are the election profile of
// TestR3SurvivesLosingTheStreamLeader: an expiry of 1.5 s, shorter than a
// raft election, so that every server fault tests DESIGN rule 2.
//
// CHAOS_SEED replays a run; CHAOS_DURATION sets its length (default 10s:
// with the forced server faults and the final checks, 30-60 s in make test;
// `make chaos` runs 5 minutes).
func TestChaosCluster(t *testing.T) {
	seed, dur := chaosParams(t, 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	c := natstest.NewCluster(t)
	var addrs []string
	for _, s := range c.Servers {
		addrs = append(addrs, s.Addr().String()) // restarts keep the client port
	}
	env := chaosEnv{
		name:         "cluster",
		addrs:        addrs,
		adminURL:     c.URLs(),
		replicas:     3,
		timings:      electionTimings(),
		opTimeout:    time.Second,
		members:      []string{"w00", "w01", "w02", "w03", "w04"},
		nparts:       48,
		serverFaults: []weighted{{"server-restart", 2}, {"leader-loss", 2}, {"stream-outage", 1}},
		forced:       []string{"leader-loss", "stream-outage"},
		settleSlack:  30 * time.Second,
	}
	env.serverFault = func(r *chaosRig, kind string) {
		t.Helper()
		exp := r.env.timings.Expiry
		stream := projection.StreamName(r.group)
		switch kind {
		case "server-restart":
			i := r.rng.Intn(len(c.Servers))
			c.Stop(i)
			hold(r.rng, 2*exp)
			c.Restart(i)
		case "leader-loss":
			leader := streamLeader(t, ctx, c, r.admin, stream)
			gone := c.Servers[leader].Name()
			r.note("stopping %s, the leader", gone)
			c.Stop(leader)
			waitFor(t, r.bound, "a new leader of "+stream, func() bool {
				n := streamLeaderName(ctx, r.admin, stream)
				return n != "" && n != gone
			})
			r.note("new leader %s", streamLeaderName(ctx, r.admin, stream))
			c.Restart(leader)
			r.note("restarted %s", gone)
		case "stream-outage":
			// The leader and one more: no quorum, the stream is
			// unavailable for longer than the expiry.
			leader := streamLeader(t, ctx, c, r.admin, stream)
			other := (leader + 1 + r.rng.Intn(2)) % 3
			c.Stop(leader)
			c.Stop(other)
			hold(r.rng, 4*exp)
			c.Restart(other)
			c.Restart(leader)
		default:
			t.Fatalf("unknown server fault %q", kind)
		}
	}
	runChaos(t, ctx, env, seed, dur)
}

// streamLeaderName returns the name of the server leading stream ("" when
// unknown or none).
func streamLeaderName(ctx context.Context, js jetstream.JetStream, stream string) string {
	ictx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := js.Stream(ictx, stream)
	if err != nil {
		return ""
	}
	info, err := st.Info(ictx)
	if err != nil || info.Cluster == nil {
		return ""
	}
	return info.Cluster.Leader
}

// streamLeader returns the index in c of the server leading stream.
func streamLeader(t *testing.T, ctx context.Context, c *natstest.Cluster, js jetstream.JetStream, stream string) int {
	t.Helper()
	leader := -1
	waitFor(t, time.Minute, fmt.Sprintf("the leader of %s", stream), func() bool {
		name := streamLeaderName(ctx, js, stream)
		for i, s := range c.Servers {
			if name != "" && s.Running() && s.Name() == name {
				leader = i
				return true
			}
		}
		return false
	})
	return leader
}
