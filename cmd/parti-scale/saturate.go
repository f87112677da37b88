package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"github.com/parti-io/parti/projection"
)

// Part 3 of issue 17: fast failover without false expiries. A group runs
// for --sat-duration while --sat-burners other processes spin on the cores
// (and, in a second run, the members' processes churn garbage); then a
// member is crashed under that load. A false expiry is a healthy member
// removed; a lease loss is a lease that lapsed (the member revoked what it
// held and took it back).

// gcPressureEnv makes a worker process allocate garbage continuously.
const gcPressureEnv = "PARTI_SCALE_GC_PRESSURE"

// burn spins on one core until ctx ends (a burner process).
func burn(ctx context.Context) {
	runtime.GOMAXPROCS(1)
	done := ctx.Done()
	for n := uint64(0); ; n++ {
		if n%(1<<24) == 0 {
			select {
			case <-done:
				return
			default:
			}
		}
	}
}

// gcPressure keeps a worker's garbage collector busy: it allocates 1 MiB
// blocks without pause, keeping the last 64 live.
func gcPressure(ctx context.Context) {
	var keep [64][]byte
	for i := 0; ctx.Err() == nil; i++ {
		b := make([]byte, 1<<20)
		b[i%len(b)] = byte(i)
		keep[i%len(keep)] = b
	}
}

// startBurners starts n burner processes; stop kills them.
func startBurners(n int) (stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var cmds []*exec.Cmd
	stop = func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	for range n {
		c := exec.Command(exe)
		c.Env = append(os.Environ(), roleEnv+"=burner")
		if err := c.Start(); err != nil {
			stop()
			return nil, fmt.Errorf("start burner: %w", err)
		}
		cmds = append(cmds, c)
	}
	return stop, nil
}

func (d *driver) saturateSweep(ctx context.Context) {
	for _, profile := range d.o.satProfiles {
		gcs := []bool{false}
		if d.o.satGC {
			gcs = append(gcs, true)
		}
		for _, gc := range gcs {
			prefix := fmt.Sprintf("saturate_%s_m%d_p%d", profile, d.o.satMembers, d.o.satPartitions)
			if gc {
				prefix += "_gc"
			}
			if err := d.saturateOne(ctx, prefix, profile, gc); err != nil {
				d.stopped(prefix, "run", err)
			}
			if ctx.Err() != nil {
				return
			}
		}
	}
}

func (d *driver) saturateOne(ctx context.Context, prefix, profile string, gc bool) error {
	M, P := d.o.satMembers, d.o.satPartitions
	c, _ := groupConfig(profile, "x")
	tm := c.Timings
	fmt.Fprintf(d.out, "# %s: %d members over %d processes, %d partitions, heartbeat %v, expiry %v, lease %v, %d burners, GC pressure %v, for %v\n",
		prefix, M, min(d.o.procs, M), P, tm.Heartbeat, tm.Expiry, tm.Lease, d.o.satBurners, gc, d.o.satDuration)
	defer func() { d.fig(prefix+"_loadavg", loadAvg(), "load") }()
	group := fmt.Sprintf("sat-%s-%d-%v-%d", profile, M, gc, os.Getpid())
	if err := d.provision(ctx, group); err != nil {
		return err
	}
	defer func() { _ = d.js.DeleteStream(context.Background(), projection.StreamName(group)) }()
	var env []string
	if gc {
		env = append(env, gcPressureEnv+"=1")
	}
	procs, err := startProcs(min(d.o.procs, M), d.cl.urls(), profile, 3, d.stderr, env...)
	if err != nil {
		return err
	}
	defer stopProcs(procs)
	f := &bigFleet{procs: procs, group: group, parts: P, where: map[string]int{}}
	var ids []string
	for i := range M {
		ids = append(ids, fmt.Sprintf("s%03d", i))
	}
	sctx, cancel := context.WithTimeout(ctx, d.o.stepTimeout)
	defer cancel()
	if err := f.join(sctx, ids, M); err != nil {
		return err
	}
	if err := f.waitSettled(sctx, M); err != nil {
		return err
	}
	stopBurners, err := startBurners(d.o.satBurners)
	if err != nil {
		return err
	}
	defer stopBurners()
	before, err := f.status(sctx, 0, false)
	if err != nil {
		return err
	}
	c0, err := f.counts(sctx)
	if err != nil {
		return err
	}
	t0 := time.Now()
	var loadSum float64
	var loadN int
	for time.Since(t0) < d.o.satDuration {
		if err := pause(ctx, min(10*time.Second, d.o.satDuration-time.Since(t0))); err != nil {
			return err
		}
		loadSum += loadAvg()
		loadN++
	}
	qctx, qcancel := context.WithTimeout(ctx, d.o.stepTimeout)
	defer qcancel()
	after, err := f.status(qctx, 0, false)
	if err != nil {
		return err
	}
	c1, err := f.counts(qctx)
	if err != nil {
		return err
	}
	d.fig(prefix+"_minutes", time.Since(t0).Minutes(), "min")
	d.fig(prefix+"_loadavg_mean", loadSum/float64(max(loadN, 1)), "load")
	d.fig(prefix+"_false_expiries", float64(after.expired-before.expired), "members")
	d.fig(prefix+"_leases_lost", float64(c1.leasesLost-c0.leasesLost), "lapses")
	d.fig(prefix+"_lease_lost_revocations", float64(after.leaseLost-before.leaseLost), "revocations")
	d.fig(prefix+"_heartbeats_failed", float64(c1.hbFailed-c0.hbFailed), "heartbeats")
	d.fig(prefix+"_verdicts", float64(c1.verdicts-c0.verdicts), "verdicts")

	// A crash under the same load: from the Stop until its last partition
	// is acted on again, ÷ expiry.
	st, err := f.status(qctx, 0, false)
	if err != nil {
		return err
	}
	victim := ""
	for _, id := range f.live() {
		if id != st.leader {
			victim = id
			break
		}
	}
	if victim == "" {
		return errors.New("no member to crash")
	}
	r, err := f.procs[f.where[victim]].call(qctx, "crash "+f.spec(victim))
	if err != nil {
		return err
	}
	delete(f.where, victim)
	ns, _ := strconv.ParseInt(r[0], 10, 64)
	crashed := time.Unix(0, ns)
	last, err := f.waitOwned(qctx, crashed)
	if err != nil {
		return err
	}
	d.fig(prefix+"_crash_reowned_ms", ms(last.Sub(crashed)), "ms")
	d.fig(prefix+"_crash_over_expiry", last.Sub(crashed).Seconds()/tm.Expiry.Seconds(), "ratio")
	return nil
}
