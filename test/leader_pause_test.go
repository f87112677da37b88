package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/internal/testhooks"
	"github.com/parti-io/parti/liveness"
	"github.com/parti-io/parti/projection"
)

// procCluster is a three-server cluster of nats-server processes on
// loopback, so that a server can be killed with SIGKILL: its peers then
// learn of the loss only from silence, as in production. (An embedded
// server's Shutdown closes its routes cleanly and its peers elect a new
// leader at once, which measures nothing.)
type procCluster struct {
	t     *testing.T
	bin   string
	confs []string
	names []string
	urls  []string
	procs []*exec.Cmd
}

// buildNATSServer builds the nats-server of go.mod into dir.
func buildNATSServer(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "nats-server")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput()
	if err != nil {
		t.Fatalf("build nats-server: %v\n%s", err, out)
	}
	return bin
}

func newProcCluster(t *testing.T, bin string) *procCluster {
	t.Helper()
	dir := t.TempDir()
	c := &procCluster{t: t, bin: bin}
	ports := []int{natstest.FreePort(t), natstest.FreePort(t), natstest.FreePort(t)}
	routes := []int{natstest.FreePort(t), natstest.FreePort(t), natstest.FreePort(t)}
	for i := range 3 {
		var rs []string
		for j, p := range routes {
			if j != i {
				rs = append(rs, fmt.Sprintf("nats://127.0.0.1:%d", p))
			}
		}
		name := fmt.Sprintf("p%d", i)
		conf := filepath.Join(dir, name+".conf")
		body := fmt.Sprintf("server_name: %s\nlisten: 127.0.0.1:%d\njetstream { store_dir: %q }\ncluster { name: pause, listen: 127.0.0.1:%d, routes: [%s] }\n",
			name, ports[i], filepath.Join(dir, name), routes[i], strings.Join(rs, ", "))
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c.confs = append(c.confs, conf)
		c.names = append(c.names, name)
		c.urls = append(c.urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
		c.procs = append(c.procs, nil)
	}
	t.Cleanup(func() {
		for i := range c.procs {
			c.kill(i)
		}
	})
	for i := range 3 {
		c.start(i)
	}
	c.waitJetStream()
	return c
}

func (c *procCluster) start(i int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, "-c", c.confs[i])
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", c.names[i], err)
	}
	c.procs[i] = cmd
}

// kill kills server i with SIGKILL.
func (c *procCluster) kill(i int) {
	if p := c.procs[i]; p != nil {
		_ = p.Process.Kill()
		_ = p.Wait()
		c.procs[i] = nil
	}
}

// waitJetStream waits until JetStream answers with every server up.
func (c *procCluster) waitJetStream() {
	c.t.Helper()
	nc, err := nats.Connect(strings.Join(c.urls, ","), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		c.t.Fatal(err)
	}
	defer nc.Close()
	waitFor(c.t, time.Minute, "JetStream on the process cluster", func() bool {
		resp, err := nc.Request("$JS.API.INFO", nil, time.Second)
		return err == nil && !strings.Contains(string(resp.Data), `"error"`)
	})
}

// pauseKill is what one loss of the stream leader's server did to a fleet.
type pauseKill struct {
	stallMin, stallMax time.Duration // kill → each member's first acknowledged heartbeat
	revoked            int           // partitions whose lease lapsed
	gapMin, gapMax     time.Duration // per revoked partition: lapse → handed back
	backAt             time.Duration // kill → the last partition handed back
	moved, expired     int
}

// TestChaosStreamLeaderPause measures how long work pauses when the server
// leading the group's stream is lost, per liveness profile: three members
// on a three-server cluster, the stream at three replicas, 64 partitions.
// Each round kills the leader's server with SIGKILL (the servers are
// nats-server processes built from go.mod's version) and records, on the
// members' own clock, when each member's heartbeats were acknowledged again
// (the stall: NATS elects a new stream leader meanwhile), which
// partitions' leases lapsed, and when each was handed back. It asserts what
// README promises: nobody is expired, no partition moves, no two members
// ever act on one partition, every partition is back.
//
// It runs in make chaos (CHAOS_DURATION set) or with LEADER_PAUSE=N (N
// rounds per profile; default 3); make test skips it for its length.
func TestChaosStreamLeaderPause(t *testing.T) {
	rounds := 3
	if s := os.Getenv("LEADER_PAUSE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("LEADER_PAUSE=%q: want a positive number of rounds", s)
		}
		rounds = n
	} else if os.Getenv("CHAOS_DURATION") == "" {
		t.Skip("a minute or two per profile: make chaos runs it (or LEADER_PAUSE=N)")
	}
	profiles := []struct {
		name string
		t    liveness.Timings
	}{{"production", liveness.Production()}, {"test", liveness.Test()}}
	bin := buildNATSServer(t, t.TempDir())
	var report []string
	for _, p := range profiles {
		t.Run(p.name, func(t *testing.T) {
			kills := measureLeaderPause(t, bin, p.t, rounds)
			line := summarizePause(p.name, p.t, kills)
			report = append(report, line)
			t.Log(line)
		})
	}
	for _, l := range report {
		fmt.Println("stream-leader pause:", l)
	}
}

func measureLeaderPause(t *testing.T, bin string, tm liveness.Timings, rounds int) []pauseKill {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newProcCluster(t, bin)
	_, js := natstest.Connect(t, strings.Join(c.urls, ","))
	f := newFleet(t, js, "pause", 64)
	f.base.Replicas = 3
	f.base.Timings = tm
	f.base.OpTimeout = time.Second
	coldStart(t, ctx, f, 3)
	stream := projection.StreamName("pause")
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	var kills []pauseKill
	for round := range rounds {
		f.waitSettled(2 * time.Minute)
		incs := map[string]uint64{}
		for _, m := range f.all() {
			incs[m.ID()] = m.Incarnation()
		}
		before := f.owners()
		leader, oldName := -1, ""
		waitFor(t, time.Minute, "the stream's replicas to be current", func() bool {
			ictx, icancel := context.WithTimeout(ctx, time.Second)
			defer icancel()
			info, err := st.Info(ictx)
			if err != nil || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
				return false
			}
			for _, r := range info.Cluster.Replicas {
				if !r.Current || r.Offline {
					return false
				}
			}
			for i, name := range c.names {
				if name == info.Cluster.Leader {
					leader, oldName = i, name
				}
			}
			return leader >= 0
		})

		kill := f.rec.clk.Now()
		c.kill(leader)
		// Each member's first acknowledged heartbeat after the kill: its
		// lease deadline moves past kill + lease.
		resumed := map[string]time.Duration{}
		waitFor(t, 2*time.Minute, "every member's heartbeats to be acknowledged again", func() bool {
			for _, m := range f.all() {
				if _, ok := resumed[m.ID()]; ok {
					continue
				}
				if d := testhooks.LeaseDeadline(m); d > kill+tm.Lease {
					resumed[m.ID()] = d - tm.Lease - kill
				}
			}
			return len(resumed) == len(f.all())
		})
		waitFor(t, 2*time.Minute, "every partition handed back", func() bool {
			return f.rec.uncovered() == 0 && f.settled()
		})
		k := pauseKill{stallMin: time.Hour}
		for _, d := range resumed {
			k.stallMin, k.stallMax = min(k.stallMin, d), max(k.stallMax, d)
		}
		k.revoked, k.gapMin, k.gapMax, k.backAt = f.rec.gapsAfter(kill)
		for _, m := range f.all() {
			if m.Incarnation() != incs[m.ID()] {
				k.expired++
			}
		}
		k.moved = moved(before, f.owners())
		t.Logf("round %d: killed %s (stream leader); heartbeats acknowledged again after %v–%v; %d partitions' leases lapsed, each without an owner for %v–%v, the last back %v after the kill; %d expired, %d moved",
			round+1, oldName, k.stallMin.Round(time.Millisecond), k.stallMax.Round(time.Millisecond), k.revoked,
			k.gapMin.Round(time.Millisecond), k.gapMax.Round(time.Millisecond), k.backAt.Round(time.Millisecond), k.expired, k.moved)
		if k.expired != 0 || k.moved != 0 {
			t.Errorf("losing the stream leader expired %d members and moved %d partitions: want none", k.expired, k.moved)
		}
		kills = append(kills, k)
		c.start(leader)
		c.waitJetStream()
	}
	f.checkNoOverlap()
	return kills
}

// uncovered returns the number of partitions without an open interval.
func (r *recorder) uncovered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ivs := range r.ivs {
		if len(ivs) == 0 || ivs[len(ivs)-1].end != 0 {
			n++
		}
	}
	return n
}

// gapsAfter measures, for every partition whose interval ended after at,
// the time until its next interval started: how many there were, the
// shortest and longest gap, and when (after at) the last one started.
func (r *recorder) gapsAfter(at time.Duration) (n int, gapMin, gapMax, backAt time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	gapMin = time.Hour
	for _, ivs := range r.ivs {
		for i, iv := range ivs {
			if iv.end == 0 || iv.end < at || i+1 == len(ivs) {
				continue
			}
			gap := ivs[i+1].start - iv.end
			n++
			gapMin, gapMax = min(gapMin, gap), max(gapMax, gap)
			backAt = max(backAt, ivs[i+1].start-at)
		}
	}
	if n == 0 {
		gapMin = 0
	}
	return n, gapMin, gapMax, backAt
}

func summarizePause(name string, tm liveness.Timings, kills []pauseKill) string {
	span := func(f func(pauseKill) (time.Duration, time.Duration)) string {
		var lo, hi []time.Duration
		for _, k := range kills {
			a, b := f(k)
			lo, hi = append(lo, a), append(hi, b)
		}
		return fmt.Sprintf("%.1f–%.1f s", slices.Min(lo).Seconds(), slices.Max(hi).Seconds())
	}
	revoked, expired, moved := 0, 0, 0
	for _, k := range kills {
		revoked += k.revoked
		expired += k.expired
		moved += k.moved
	}
	return fmt.Sprintf("%s profile (heartbeat %v, lease %v, expiry %v), %d losses of the stream leader's server, 64 partitions: heartbeats stalled %s; %d of %d partition leases lapsed; no work on a lapsed partition for %s; the last back %s after the loss; %d expired, %d moved",
		name, tm.Heartbeat, tm.Lease, tm.Expiry, len(kills),
		span(func(k pauseKill) (time.Duration, time.Duration) { return k.stallMin, k.stallMax }),
		revoked, 64*len(kills),
		span(func(k pauseKill) (time.Duration, time.Duration) { return k.gapMin, k.gapMax }),
		span(func(k pauseKill) (time.Duration, time.Duration) { return k.backAt, k.backAt }),
		expired, moved)
}
