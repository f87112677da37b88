package main

import (
	"context"
	"fmt"
	"os"
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
			_, err := projection.Provision(ctx, d.js, projection.StreamConfig{Group: groups[g], Replicas: 3})
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
	return nil
}
