package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parti-io/parti/projection"
)

// groupSweep runs manyGroups for each count, stopping at the first that
// does not hold.
func (d *driver) groupSweep(ctx context.Context) {
	for i, G := range d.o.groups {
		if ctx.Err() != nil {
			return
		}
		if err := d.manyGroups(ctx, G); err != nil {
			for _, G2 := range d.o.groups[i+1:] {
				fmt.Fprintf(d.out, "# SKIPPED groups_%d: a smaller count stopped\n", G2)
			}
			return
		}
	}
}

// manyGroups creates G groups of three members (a stream of three replicas
// each), the members of each group in three different processes, waits
// until every group's partitions are acted on, then measures an idle
// window: the servers' memory (this process, after a GC), CPU and message
// rate, and the members' CPU.
func (d *driver) manyGroups(ctx context.Context, G int) (err error) {
	prefix := fmt.Sprintf("groups_%d", G)
	fmt.Fprintf(d.out, "# %s: %d idle groups of 3 members, %d partitions each, %s profile, over %d processes\n", prefix, G, d.o.groupPartitions, d.o.groupProfile, d.o.procs)
	cur := "provision"
	defer func() {
		if err != nil {
			d.stopped(prefix, cur, err)
		}
		d.fig(prefix+"_loadavg", loadAvg(), "load")
	}()
	rss0, heap0 := selfMemMB()
	outer := ctx
	ctx, cancel := context.WithTimeoutCause(ctx, d.o.stepTimeout, fmt.Errorf("%w %v", errStep, d.o.stepTimeout))
	defer cancel()

	groups := make([]string, G)
	for g := range groups {
		groups[g] = fmt.Sprintf("idle-%d-%d-%d", G, g, os.Getpid())
	}
	var mu sync.Mutex
	defer func() {
		// Delete the streams (a missing one is no error here), 16 at a time, and say how long it took.
		t0 := time.Now()
		sem := make(chan struct{}, 16)
		var wg sync.WaitGroup
		for _, g := range groups {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				_ = d.js.DeleteStream(dctx, projection.StreamName(g))
			}()
		}
		wg.Wait()
		d.fig(prefix+"_delete_ms", ms(time.Since(t0)), "ms")
	}()

	// Provision the streams, 16 at a time.
	t0 := time.Now()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var perr error
	for g := range groups {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := d.provision(ctx, groups[g])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if perr == nil {
					perr = fmt.Errorf("stream of %s: %w", groups[g], err)
				}
			}
		}()
	}
	wg.Wait()
	if perr != nil {
		return perr
	}
	provisioned := time.Since(t0)
	d.fig(prefix+"_provision_ms", ms(provisioned), "ms")

	cur = "join"
	procs, err := startProcs(min(d.o.procs, 3*G), d.cl.urls(), d.o.groupProfile, 3, d.stderr)
	if err != nil {
		return err
	}
	defer stopProcs(procs)
	by := make([][]string, len(procs))
	for g, name := range groups {
		for j := range 3 {
			p := (g + j) % len(procs)
			by[p] = append(by[p], fmt.Sprintf("%s/w%d", name, j))
		}
	}
	t1 := time.Now()
	owned := func() (int, error) {
		n := 0
		err := each(procs, func(i int, p *proc) error {
			r, err := p.call(ctx, "statusall")
			if err != nil {
				return err
			}
			v, _ := strconv.Atoi(r[0])
			mu.Lock()
			n += v
			mu.Unlock()
			return nil
		})
		return n, err
	}
	defer func() {
		if err != nil && cur != "idle" {
			// How far it got: the partitions acted on when it stopped.
			octx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ctx = octx
			// A worker killed after its join ran past the deadline does
			// not answer: its partitions are not counted.
			n, oerr := owned()
			unit := "partitions"
			if oerr != nil {
				unit = "partitions(not_every_worker_answered)"
			}
			d.fig(prefix+"_partitions_owned_at_stop", float64(n), unit)
			d.fig(prefix+"_partitions_wanted", float64(G*d.o.groupPartitions), "partitions")
		}
	}()
	if err := each(procs, func(i int, p *proc) error {
		if len(by[i]) == 0 {
			return nil
		}
		_, err := p.call(ctx, fmt.Sprintf("join %d 3 %s", d.o.groupPartitions, strings.Join(by[i], " ")))
		return err
	}); err != nil {
		return err
	}
	d.fig(prefix+"_joins_returned_ms", ms(time.Since(t1)), "ms")
	want := G * d.o.groupPartitions
	cur = "owned"
	for {
		n, err := owned()
		if err != nil {
			return err
		}
		if n == want {
			break
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("%d of %d partitions acted on: %w", n, want, err)
		}
	}
	d.fig(prefix+"_all_owned_ms", ms(time.Since(t1)), "ms")
	d.fig(prefix+"_create_ms", ms(provisioned+time.Since(t1)), "ms")

	cur = "idle"
	cpu0 := procCPU(os.Getpid())
	var w0 time.Duration
	for _, p := range procs {
		w0 += procCPU(p.cmd.Process.Pid)
	}
	m0, b0 := d.cl.inMsgs()
	ti := time.Now()
	if err := pause(ctx, d.o.idle); err != nil {
		return err
	}
	secs := time.Since(ti).Seconds()
	cpu1 := procCPU(os.Getpid())
	var w1 time.Duration
	var wrss int64
	for _, p := range procs {
		w1 += procCPU(p.cmd.Process.Pid)
		r, _ := procMemKB(p.cmd.Process.Pid)
		wrss += r
	}
	m1, b1 := d.cl.inMsgs()
	rss1, heap1 := selfMemMB()
	d.fig(prefix+"_idle_servers_cpu_pct", 100*(cpu1-cpu0).Seconds()/secs, "%cpu")
	d.fig(prefix+"_idle_members_cpu_pct", 100*(w1-w0).Seconds()/secs, "%cpu")
	d.fig(prefix+"_idle_servers_in_msgs_per_s", float64(m1-m0)/secs, "msg/s")
	d.fig(prefix+"_idle_servers_in_bytes_per_s", float64(b1-b0)/secs, "B/s")
	d.fig(prefix+"_servers_rss_mb", rss1, "MB")
	d.fig(prefix+"_servers_rss_per_group_kb", 1024*(rss1-rss0)/float64(G), "kB/group")
	d.fig(prefix+"_servers_heap_per_group_kb", 1024*(heap1-heap0)/float64(G), "kB/group")
	d.fig(prefix+"_members_rss_mb", float64(wrss)/1024, "MB")

	cur = "failover"
	fctx, fcancel := context.WithTimeoutCause(outer, d.o.stepTimeout, fmt.Errorf("%w %v", errStep, d.o.stepTimeout))
	defer fcancel()
	return d.groupFailovers(fctx, prefix, procs, groups)
}

// groupFailovers crashes one member in each of a sample of up to 10 of the
// groups (spread over the list), all at once: in every other sampled group
// the leader, in the others a member that does not lead. It reports each
// failover (from the Stop until the last of the victim's partitions is
// acted on again) ÷ the expiry: the median and the largest.
func (d *driver) groupFailovers(ctx context.Context, prefix string, procs []*proc, groups []string) error {
	k := min(10, len(groups))
	expiry := profileExpiry(d.o.groupProfile)
	type sample struct {
		f      *bigFleet
		victim string
		p      *proc
		t0     time.Time
		took   time.Duration
	}
	samples := make([]*sample, k)
	leaders := 0
	for i := range k {
		g := i * len(groups) / k
		f := &bigFleet{procs: procs, group: groups[g], parts: d.o.groupPartitions}
		st, err := f.status(ctx, 0, false)
		if err != nil {
			return err
		}
		if st.leader == "" {
			return fmt.Errorf("group %s: no member says it leads", groups[g])
		}
		victim := st.leader
		if i%2 == 1 {
			leaders++
		} else {
			for j := range 3 {
				if id := fmt.Sprintf("w%d", j); id != st.leader {
					victim = id
					break
				}
			}
		}
		j, _ := strconv.Atoi(victim[1:])
		samples[i] = &sample{f: f, victim: victim, p: procs[(g+j)%len(procs)]}
	}
	var mu sync.Mutex
	err := each(procs, func(_ int, p *proc) error {
		for _, s := range samples {
			if s.p != p {
				continue
			}
			r, err := p.call(ctx, "crash "+s.f.group+"/"+s.victim)
			if err != nil {
				return err
			}
			ns, _ := strconv.ParseInt(r[0], 10, 64)
			mu.Lock()
			s.t0 = time.Unix(0, ns)
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return err
	}
	errs := make([]error, k)
	var wg sync.WaitGroup
	for i, s := range samples {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last, err := s.f.waitOwned(ctx, s.t0)
			if err != nil {
				errs[i] = fmt.Errorf("group %s after the crash of %s: %w", s.f.group, s.victim, err)
				return
			}
			s.took = last.Sub(s.t0)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	ratios := make([]float64, k)
	for i, s := range samples {
		ratios[i] = s.took.Seconds() / expiry.Seconds()
	}
	slices.Sort(ratios)
	med := ratios[k/2]
	if k%2 == 0 {
		med = (ratios[k/2-1] + ratios[k/2]) / 2
	}
	d.fig(prefix+"_failover_groups", float64(k), "groups")
	d.fig(prefix+"_failover_leader_crashes", float64(leaders), "groups")
	d.fig(prefix+"_failover_over_expiry_median", med, "ratio")
	d.fig(prefix+"_failover_over_expiry_max", ratios[k-1], "ratio")
	within := 0
	for _, r := range ratios {
		if r <= 1.2 {
			within++
		}
	}
	d.fig(prefix+"_failover_within_1.2_expiry", float64(within), "groups")
	return nil
}
