package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/strategy"
)

// bigFleet is one group's members spread over the worker processes.
type bigFleet struct {
	procs []*proc
	group string
	parts int
	where map[string]int // member ID → its process
	next  int            // round-robin placement of new members
}

func (f *bigFleet) spec(id string) string { return f.group + "/" + id }

func (f *bigFleet) live() []string {
	ids := make([]string, 0, len(f.where))
	for id := range f.where {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// join joins ids (placed round-robin over the processes) at once and
// returns when every Join returned.
func (f *bigFleet) join(ctx context.Context, ids []string, expected int) error {
	by := make([][]string, len(f.procs))
	for _, id := range ids {
		p, ok := f.where[id]
		if !ok {
			p = f.next % len(f.procs)
			f.next++
		}
		f.where[id] = p
		by[p] = append(by[p], f.spec(id))
	}
	return each(f.procs, func(i int, p *proc) error {
		if len(by[i]) == 0 {
			return nil
		}
		_, err := p.call(ctx, fmt.Sprintf("join %d %d %s", f.parts, expected, strings.Join(by[i], " ")))
		return err
	})
}

type fleetStatus struct {
	owned      int
	lastAssign time.Time
	leader     string
	settled    bool
	leaseLost  int // revocations for a lapsed lease, so far
	expired    int // members removed that were neither crashed nor closed
}

func (f *bigFleet) status(ctx context.Context, n int, settle bool) (fleetStatus, error) {
	var st fleetStatus
	type one struct {
		owned         int
		last          int64
		leader        string
		settled       string
		lost, expired int
	}
	res := make([]one, len(f.procs))
	s := "0"
	if settle {
		s = "1"
	}
	err := each(f.procs, func(i int, p *proc) error {
		r, err := p.call(ctx, fmt.Sprintf("status %s %d %s", f.group, n, s))
		if err != nil {
			return err
		}
		if len(r) != 6 {
			return fmt.Errorf("%w: status reply %q", errWorker, r)
		}
		o, _ := strconv.Atoi(r[0])
		l, _ := strconv.ParseInt(r[1], 10, 64)
		lost, _ := strconv.Atoi(r[4])
		exp, _ := strconv.Atoi(r[5])
		res[i] = one{o, l, r[2], r[3], lost, exp}
		return nil
	})
	if err != nil {
		return st, err
	}
	var last int64
	for _, r := range res {
		st.owned += r.owned
		st.leaseLost += r.lost
		st.expired += r.expired
		last = max(last, r.last)
		if r.leader != "-" {
			st.leader = r.leader
			st.settled = r.settled == "1"
		}
	}
	st.lastAssign = time.Unix(0, last)
	return st, nil
}

// pubCounts is what the members of a group published, and how often their
// leases lapsed, per their metrics.
type pubCounts struct{ hbOK, hbFailed, verdicts, leasesLost int64 }

// counts sums the heartbeats, verdicts and lease lapses of the group's
// members so far.
func (f *bigFleet) counts(ctx context.Context) (pubCounts, error) {
	res := make([]pubCounts, len(f.procs))
	err := each(f.procs, func(i int, p *proc) error {
		r, err := p.call(ctx, "counts "+f.group)
		if err != nil {
			return err
		}
		if len(r) != 4 {
			return fmt.Errorf("%w: counts reply %q", errWorker, r)
		}
		for j, v := range []*int64{&res[i].hbOK, &res[i].hbFailed, &res[i].verdicts, &res[i].leasesLost} {
			if *v, err = strconv.ParseInt(r[j], 10, 64); err != nil {
				return fmt.Errorf("%w: counts reply %q: %w", errWorker, r, err)
			}
		}
		return nil
	})
	var c pubCounts
	for _, r := range res {
		c.hbOK += r.hbOK
		c.hbFailed += r.hbFailed
		c.verdicts += r.verdicts
		c.leasesLost += r.leasesLost
	}
	return c, err
}

// waitOwned waits until the handlers of the members hold every partition,
// the latest Assigned call after since; it returns that call's time.
func (f *bigFleet) waitOwned(ctx context.Context, since time.Time) (time.Time, error) {
	var st fleetStatus
	for {
		cur, err := f.status(ctx, 0, false)
		if err != nil {
			return time.Time{}, fmt.Errorf("%d of %d partitions acted on at the last status: %w", st.owned, f.parts, err)
		}
		st = cur
		if st.owned == f.parts && st.lastAssign.After(since) {
			return st.lastAssign, nil
		}
		if err := pause(ctx, 50*time.Millisecond); err != nil {
			return time.Time{}, fmt.Errorf("%d of %d partitions acted on: %w", st.owned, f.parts, err)
		}
	}
}

// waitSettled waits until every partition is held and the leader's fold
// shows a settled group of n live members.
func (f *bigFleet) waitSettled(ctx context.Context, n int) error {
	var st fleetStatus
	for {
		cur, err := f.status(ctx, n, true)
		if err != nil {
			return fmt.Errorf("not settled (%d of %d partitions acted on, leader %q at the last status): %w", st.owned, f.parts, st.leader, err)
		}
		st = cur
		if st.owned == f.parts && st.settled {
			return nil
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("not settled (%d of %d partitions acted on, leader %q): %w", st.owned, f.parts, st.leader, err)
		}
	}
}

// owners returns each partition's holder per the handlers.
func (f *bigFleet) owners(ctx context.Context) ([]string, error) {
	out := make([]string, f.parts)
	for _, p := range f.procs { // one at a time: they write into out
		if err := p.dump(ctx, f.group, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func moved(a, b []string) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

func minimum(before []string, members []string, parts []string) int {
	return max(1, strategy.MinimumMoves(strategy.Input{Members: members, Partitions: parts, Previous: before}))
}

func partitionNames(n int) []string {
	p := make([]string, n)
	for i := range p {
		p[i] = fmt.Sprintf("p-%06d", i)
	}
	return p
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// groupConfig is group's configuration at profile: fast, production,
// patient (production's timings five times over, and a 5 s decision
// window: for a fleet too large for its CPUs, where members that wait
// seconds for a core must not expire one another) or subsecond (heartbeat
// 100 ms, expiry 500 ms: the saturation part's). ok is false for any other
// name (the configuration is then fast's).
func groupConfig(profile, group string) (c parti.Config, ok bool) {
	switch profile {
	case "fast":
		return parti.Fast(group), true
	case "production":
		return parti.Production(group), true
	case "patient":
		c := parti.Production(group)
		t := &c.Timings
		t.Heartbeat, t.Expiry, t.Lease, t.Margin, t.AckBudget, t.ReconnectWait =
			5*t.Heartbeat, 5*t.Expiry, 5*t.Lease, 5*t.Margin, 5*t.AckBudget, 5*t.ReconnectWait
		c.Window, c.Grace = 5*time.Second, 2*time.Minute
		return c, true
	case "subsecond":
		c := parti.Fast(group)
		c.Timings = parti.Timings{
			Heartbeat:     100 * time.Millisecond,
			Expiry:        500 * time.Millisecond,
			Lease:         250 * time.Millisecond,
			Margin:        200 * time.Millisecond,
			AckBudget:     100 * time.Millisecond,
			ReconnectWait: 100 * time.Millisecond,
		}
		return c, true
	}
	return parti.Fast(group), false
}

// profileExpiry is profile's expiry.
func profileExpiry(profile string) time.Duration {
	c, _ := groupConfig(profile, "x")
	return c.Timings.Expiry
}

var (
	errStep   = errors.New("step deadline")
	errMemory = errors.New("out of memory for this size")
)

// perMemberEstimate is the largest per-member RSS measured at P partitions
// or, failing that, at the largest smaller count, scaled by the ratio.
func (d *driver) perMemberEstimate(P int) (float64, bool) {
	if v, ok := d.memberRSS[P]; ok {
		return v, true
	}
	best := 0
	for p := range d.memberRSS {
		if p < P && p > best {
			best = p
		}
	}
	if best == 0 {
		return 0, false
	}
	return d.memberRSS[best] * float64(P) / float64(best), true
}

// memoryWatchdog returns a context that ends, with errMemory as its cause,
// once the machine's MemAvailable falls below --min-free.
func (d *driver) memoryWatchdog(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if avail := memAvailableMB(); avail >= 0 && avail < float64(d.o.minFreeMB) {
					cancel(fmt.Errorf("%w: MemAvailable fell to %.0f MB (--min-free %d MB)", errMemory, avail, d.o.minFreeMB))
					return
				}
			}
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}

// memAvailableMB reads MemAvailable from /proc/meminfo (-1 where unknown).
func memAvailableMB() float64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemAvailable:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return -1
			}
			return kb / 1024
		}
	}
	return -1
}

// bigSweep runs bigGroup for every profile, partition count and member
// count; once a size stops, the larger member counts of that profile and
// partition count are skipped.
func (d *driver) bigSweep(ctx context.Context) {
	for _, profile := range d.o.profiles {
		for _, P := range d.o.partitions {
			for i, M := range d.o.members {
				if ctx.Err() != nil {
					return
				}
				if err := d.bigGroup(ctx, profile, P, M); err != nil {
					for _, M2 := range d.o.members[i+1:] {
						fmt.Fprintf(d.out, "# SKIPPED scale_%s_p%d_m%d: a smaller size stopped\n", profile, P, M2)
					}
					break
				}
			}
		}
	}
}

// decisionBytesPerPartition is about what a decision placing every
// partition costs in the log, per partition (1.15 MB at 100,000).
const decisionBytesPerPartition = 12

// connBurstBytes bounds what one worker connection is sent at once when a
// decision placing every partition lands: each member on it reads the log
// itself, so it receives the decision once per member. nats-server cuts a
// client off past its max_pending (64 MB by default): 125 members over
// 100,000 partitions on one connection were cut off over and over.
const connBurstBytes = 32 << 20

// bigProcs is how many worker processes (one connection each) carry M
// members over P partitions: procs, or more when a decision times the
// members on one connection would pass connBurstBytes.
func bigProcs(procs, M, P int) int {
	perConn := max(1, connBurstBytes/(decisionBytesPerPartition*P))
	return min(M, max(procs, (M+perConn-1)/perConn))
}

// bigGroup runs one size through its steps, printing each figure as it is
// taken. It returns the error of the step that stopped it.
func (d *driver) bigGroup(ctx context.Context, profile string, P, M int) (err error) {
	prefix := fmt.Sprintf("scale_%s_p%d_m%d", profile, P, M)
	group := fmt.Sprintf("big-%s-%d-%d-%d", profile, P, M, os.Getpid())
	nprocs := bigProcs(d.o.procs, M, P)
	fmt.Fprintf(d.out, "# %s: one group, %d members over %d processes, %d partitions, %s profile\n", prefix, M, nprocs, P, profile)
	expiry := profileExpiry(profile)
	cur := "provision"
	step := func(name string, timeout time.Duration, fn func(ctx context.Context) error) error {
		cur = name
		sctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w %v", errStep, timeout))
		defer cancel()
		t0 := time.Now()
		err := fn(sctx)
		d.fig(prefix+"_step_"+name+"_ms", ms(time.Since(t0)), "ms")
		return err
	}
	defer func() {
		if err != nil {
			d.stopped(prefix, cur, err)
		}
		d.fig(prefix+"_loadavg", loadAvg(), "load")
	}()
	// The machine is shared: never let the members run it out of memory.
	// A size whose estimate (the per-member RSS measured at a smaller size
	// of the same partition count) does not fit is not started, and a
	// watchdog stops the size once MemAvailable falls below --min-free.
	if per, ok := d.perMemberEstimate(P); ok {
		need, avail := per*float64(M)*1.2, memAvailableMB()
		if avail >= 0 && need > avail-float64(d.o.minFreeMB) {
			return fmt.Errorf("%w: about %.0f MB for %d members (%.1f MB each, measured or scaled, at %d partitions), %.0f MB available, %d MB kept free",
				errMemory, need, M, per, P, avail, d.o.minFreeMB)
		}
	}
	ctx, stopWatch := d.memoryWatchdog(ctx)
	defer stopWatch()

	t0 := time.Now()
	if err := d.provision(ctx, group); err != nil {
		return err
	}
	defer func() { _ = d.js.DeleteStream(context.Background(), projection.StreamName(group)) }()
	d.fig(prefix+"_provision_ms", ms(time.Since(t0)), "ms")
	procs, err := startProcs(nprocs, d.cl.urls(), profile, 3, d.stderr)
	if err != nil {
		return err
	}
	defer stopProcs(procs)
	f := &bigFleet{procs: procs, group: group, parts: P, where: map[string]int{}}
	names := partitionNames(P)
	defer func() {
		// Whatever happened: how many leases lapsed, and whether a member
		// nobody crashed or closed was expired (a false expiry).
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if st, err := f.status(sctx, 0, false); err == nil {
			d.fig(prefix+"_lease_lost_revocations", float64(st.leaseLost), "revocations")
			d.fig(prefix+"_false_expiries", float64(st.expired), "members")
		}
		// The whole log as the run left it: records and bytes per event
		// type, parts and bytes per decision and per declaration.
		lctx, lcancel := context.WithTimeout(context.Background(), d.o.stepTimeout)
		defer lcancel()
		if ls, err := readLog(lctx, d.js, group, 0, 0); err == nil {
			d.printLog(prefix, ls)
		} else {
			fmt.Fprintf(d.out, "# %s: the log was not read: %v\n", prefix, err)
		}
	}()

	// Cold start: every member joins at once; until every partition is
	// acted on, then until the leader's fold shows the group settled.
	var ids []string
	for i := range M {
		ids = append(ids, fmt.Sprintf("w%03d", i))
	}
	if err := step("cold_start", d.o.stepTimeout, func(ctx context.Context) error {
		t0 := time.Now()
		if err := f.join(ctx, ids, M); err != nil {
			return err
		}
		d.fig(prefix+"_joins_returned_ms", ms(time.Since(t0)), "ms")
		last, err := f.waitOwned(ctx, t0)
		if err != nil {
			return err
		}
		d.fig(prefix+"_cold_start_ms", ms(last.Sub(t0)), "ms")
		if err := f.waitSettled(ctx, M); err != nil {
			return err
		}
		d.fig(prefix+"_cold_settled_ms", ms(time.Since(t0)), "ms")
		return nil
	}); err != nil {
		return err
	}

	if d.o.steady > 0 {
		if err := step("steady", d.o.steady+time.Minute, func(ctx context.Context) error { return d.steadyWindow(ctx, prefix, f, M) }); err != nil {
			return err
		}
	}

	if err := step("stream_leader_change", d.o.stepTimeout+3*expiry, func(ctx context.Context) error {
		return d.streamLeaderChange(ctx, prefix, f, expiry)
	}); err != nil {
		return err
	}

	// A crash of a member that does not lead, then of the leader: from the
	// Stop until the last of its partitions is acted on again.
	for _, which := range []string{"crash", "leader_crash"} {
		if err := step(which, d.o.stepTimeout, func(ctx context.Context) error {
			st, err := f.status(ctx, 0, false)
			if err != nil {
				return err
			}
			if st.leader == "" {
				return errors.New("no member says it leads")
			}
			victim := st.leader
			if which == "crash" {
				for _, id := range f.live() {
					if id != st.leader {
						victim = id
						break
					}
				}
			}
			r, err := f.procs[f.where[victim]].call(ctx, "crash "+f.spec(victim))
			if err != nil {
				return err
			}
			delete(f.where, victim)
			ns, _ := strconv.ParseInt(r[0], 10, 64)
			t0 := time.Unix(0, ns)
			last, err := f.waitOwned(ctx, t0)
			if err != nil {
				return err
			}
			d.fig(prefix+"_"+which+"_reowned_ms", ms(last.Sub(t0)), "ms")
			d.fig(prefix+"_"+which+"_over_expiry", last.Sub(t0).Seconds()/expiry.Seconds(), "ratio")
			return f.waitSettled(ctx, len(f.where))
		}); err != nil {
			return err
		}
	}

	// Scale-up by one member, then by 10 %: moves against the minimum.
	newID := 0
	for _, which := range []string{"scaleup_one", "scaleup_10pct"} {
		if err := step(which, d.o.stepTimeout, func(ctx context.Context) error {
			before, err := f.owners(ctx)
			if err != nil {
				return err
			}
			k := 1
			if which == "scaleup_10pct" {
				k = max(1, (len(f.where)+9)/10)
			}
			var add []string
			for range k {
				add = append(add, fmt.Sprintf("x%03d", newID))
				newID++
			}
			seq0, err := lastLogSeq(ctx, d.js, group)
			if err != nil {
				return err
			}
			t0 := time.Now()
			if err := f.join(ctx, add, 0); err != nil {
				return err
			}
			if err := f.waitSettled(ctx, len(f.where)); err != nil {
				return err
			}
			d.fig(prefix+"_"+which+"_settled_ms", ms(time.Since(t0)), "ms")
			ls, err := readLog(ctx, d.js, group, seq0, 0)
			if err != nil {
				return err
			}
			d.printGrowth(prefix+"_"+which, ls)
			after, err := f.owners(ctx)
			if err != nil {
				return err
			}
			mv, mn := moved(before, after), minimum(before, f.live(), names)
			d.fig(prefix+"_"+which+"_moved", float64(mv), "partitions")
			d.fig(prefix+"_"+which+"_moved_over_min", float64(mv)/float64(mn), "ratio")
			return nil
		}); err != nil {
			return err
		}
	}

	// Rolling restart: each member in turn closes and rejoins with its ID
	// (in its process), and the group settles before the next.
	restarted := 0
	var before []string
	var rollSeq0 uint64
	rollStart := time.Now()
	err = step("rolling_restart", d.o.rollTimeout, func(ctx context.Context) error {
		var err error
		if before, err = f.owners(ctx); err != nil {
			return err
		}
		if rollSeq0, err = lastLogSeq(ctx, d.js, group); err != nil {
			return err
		}
		rollStart = time.Now()
		n := len(f.where)
		for _, id := range f.live() {
			p := f.procs[f.where[id]]
			if _, err := p.call(ctx, "close "+f.spec(id)); err != nil {
				return err
			}
			if err := f.join(ctx, []string{id}, 0); err != nil {
				return err
			}
			if err := f.waitSettled(ctx, n); err != nil {
				return err
			}
			restarted++
		}
		return nil
	})
	d.fig(prefix+"_rolling_restarted", float64(restarted), "members")
	if restarted > 0 {
		wall := time.Since(rollStart)
		d.fig(prefix+"_rolling_wall_ms", ms(wall), "ms")
		d.fig(prefix+"_rolling_per_member_ms", ms(wall)/float64(restarted), "ms")
		if err == nil {
			after, err2 := f.owners(ctx)
			if err2 != nil {
				return err2
			}
			d.fig(prefix+"_rolling_moved", float64(moved(before, after)), "partitions")
			ls, err2 := readLog(ctx, d.js, group, rollSeq0, 0)
			if err2 != nil {
				return err2
			}
			d.printGrowth(prefix+"_rolling", ls)
		}
	}
	if err != nil {
		return err
	}
	d.fig(prefix+"_completed", 1, "bool")
	return nil
}

// steadyWindow measures, over the steady window, the CPU of the members'
// processes and of this one (the servers), and the servers' message rate.
func (d *driver) steadyWindow(ctx context.Context, prefix string, f *bigFleet, M int) error {
	cpu0 := procCPU(os.Getpid())
	var w0 time.Duration
	for _, p := range f.procs {
		w0 += procCPU(p.cmd.Process.Pid)
	}
	c0, err := f.counts(ctx)
	if err != nil {
		return err
	}
	m0, b0 := d.cl.inMsgs()
	ci0, co0 := d.cl.clientMsgs(workerConnName)
	t0 := time.Now()
	if err := pause(ctx, d.o.steady); err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	ci1, co1 := d.cl.clientMsgs(workerConnName)
	c1, err := f.counts(ctx)
	if err != nil {
		return err
	}
	cpu1 := procCPU(os.Getpid())
	var w1 time.Duration
	var rss int64
	for _, p := range f.procs {
		w1 += procCPU(p.cmd.Process.Pid)
		r, _ := procMemKB(p.cmd.Process.Pid)
		rss += r
	}
	m1, b1 := d.cl.inMsgs()
	if st, err := d.js.Stream(ctx, projection.StreamName(f.group)); err == nil {
		if info, err := st.Info(ctx); err == nil {
			d.fig(prefix+"_steady_stream_consumers", float64(info.State.Consumers), "consumers")
			d.fig(prefix+"_steady_stream_consumers_per_member", float64(info.State.Consumers)/float64(M), "consumers/member")
		}
	}
	d.fig(prefix+"_steady_servers_cpu_pct", 100*(cpu1-cpu0).Seconds()/secs, "%cpu")
	d.fig(prefix+"_steady_members_cpu_pct", 100*(w1-w0).Seconds()/secs, "%cpu")
	d.fig(prefix+"_steady_member_cpu_ms_per_s", 1000*(w1-w0).Seconds()/secs/float64(M), "ms/s/member")
	d.fig(prefix+"_steady_servers_in_msgs_per_s", float64(m1-m0)/secs, "msg/s")
	d.fig(prefix+"_steady_servers_in_bytes_per_s", float64(b1-b0)/secs, "B/s")
	// The servers' in-msgs split: the members' heartbeat publishes (counted
	// by the members, acknowledged or not), the members' other messages to
	// the servers (judging: reads of the last heartbeat, the watch
	// consumers' requests, verdicts; and log appends), and the rest, which
	// the servers send each other (forwarding over routes, replication).
	// Deliveries are what the servers sent the members (heartbeat acks,
	// watch consumers' messages, replies).
	hb := float64(c1.hbOK+c1.hbFailed-c0.hbOK-c0.hbFailed) / secs
	pubs := float64(ci1-ci0) / secs
	d.fig(prefix+"_steady_heartbeats_per_s", hb, "msg/s")
	d.fig(prefix+"_steady_heartbeats_per_s_per_member", hb/float64(M), "msg/s/member")
	d.fig(prefix+"_steady_heartbeats_failed", float64(c1.hbFailed-c0.hbFailed), "heartbeats")
	d.fig(prefix+"_steady_verdicts", float64(c1.verdicts-c0.verdicts), "verdicts")
	d.fig(prefix+"_steady_leases_lost", float64(c1.leasesLost-c0.leasesLost), "lapses")
	d.fig(prefix+"_steady_members_msgs_per_s", pubs, "msg/s")
	d.fig(prefix+"_steady_judging_msgs_per_s", pubs-hb, "msg/s")
	d.fig(prefix+"_steady_judging_msgs_per_s_per_member", (pubs-hb)/float64(M), "msg/s/member")
	d.fig(prefix+"_steady_deliveries_to_members_per_s", float64(co1-co0)/secs, "msg/s")
	d.fig(prefix+"_steady_deliveries_per_s_per_member", float64(co1-co0)/secs/float64(M), "msg/s/member")
	d.fig(prefix+"_steady_servers_in_msgs_not_from_members_per_s", float64(m1-m0)/secs-pubs, "msg/s")
	d.fig(prefix+"_steady_members_rss_mb", float64(rss)/1024, "MB")
	d.fig(prefix+"_steady_member_rss_mb", float64(rss)/1024/float64(M), "MB/member")
	d.memberRSS[f.parts] = max(d.memberRSS[f.parts], float64(rss)/1024/float64(M))
	return nil
}

// rssOne starts a dedicated process with one member holding every one of
// --rss-partitions partitions and reads its RSS once it settled (after a GC
// that returns free memory to the OS) and its peak: once with a handler that
// ignores the assignments' contexts (it keys its work by partition), once
// with one that takes every context's Done channel, as a handler that
// waits on them does ("_watching_").
func (d *driver) rssOne(ctx context.Context) error {
	for _, watch := range []bool{false, true} {
		if err := d.rssOneRun(ctx, watch); err != nil {
			return err
		}
	}
	return nil
}

func (d *driver) rssOneRun(ctx context.Context, watch bool) error {
	P := d.o.rssPartitions
	prefix := fmt.Sprintf("rss_one_member_p%d", P)
	var env []string
	if watch {
		prefix += "_watching"
		env = append(env, watchContextsEnv+"=1")
	}
	group := fmt.Sprintf("rss-%d-%d-%v", P, os.Getpid(), watch)
	if err := d.provision(ctx, group); err != nil {
		return err
	}
	defer func() { _ = d.js.DeleteStream(context.Background(), projection.StreamName(group)) }()
	procs, err := startProcs(1, d.cl.urls(), "fast", 3, d.stderr, env...)
	if err != nil {
		return err
	}
	defer stopProcs(procs)
	f := &bigFleet{procs: procs, group: group, parts: P, where: map[string]int{}}
	ctx, cancel := context.WithTimeoutCause(ctx, d.o.stepTimeout, fmt.Errorf("%w %v", errStep, d.o.stepTimeout))
	defer cancel()
	t0 := time.Now()
	if err := f.join(ctx, []string{"w0"}, 1); err != nil {
		return err
	}
	if _, err := f.waitOwned(ctx, t0); err != nil {
		return err
	}
	if err := f.waitSettled(ctx, 1); err != nil {
		return err
	}
	d.fig(prefix+"_settled_ms", ms(time.Since(t0)), "ms")
	r, err := procs[0].call(ctx, "gc")
	if err != nil {
		return err
	}
	rss, _ := strconv.ParseFloat(r[0], 64)
	hwm, _ := strconv.ParseFloat(r[1], 64)
	heap, _ := strconv.ParseFloat(r[2], 64)
	made, _ := strconv.ParseFloat(r[3], 64)
	watched, _ := strconv.ParseFloat(r[4], 64)
	d.fig(prefix+"_rss_mb", rss/1024, "MB")
	d.fig(prefix+"_peak_rss_mb", hwm/1024, "MB")
	d.fig(prefix+"_heap_inuse_mb", heap/(1<<20), "MB")
	d.fig(prefix+"_contexts_made", made, "contexts")
	d.fig(prefix+"_contexts_watched", watched, "contexts")
	d.fig(prefix+"_loadavg", loadAvg(), "load")
	return nil
}
