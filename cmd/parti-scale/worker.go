package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parti-io/parti/internal/testhooks"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
)

// The worker is this same binary started with PARTI_SCALE_ROLE=worker. It
// opens ONE NATS connection (as a real deployment's process would) and runs
// as many members on it as the driver asks, in as many groups. It reads one
// command a line on stdin and answers each with one line on stdout ("ok
// ..." or "err ..."); "dump" answers with one line per held partition, then
// "end".
//
//	join PARTS EXPECTED GROUP/ID...  join members concurrently (the reply waits for every Join)
//	crash GROUP/ID                   Stop the member (no leave, no close): "ok T0" (unix ns before Stop)
//	close GROUP/ID                   Close the member for a restart
//	status GROUP N SETTLE            "ok OWNED LASTASSIGN LEADER SETTLED LEASELOST EXPIRED": partitions
//	                                 held by this process's members per their handlers, the latest
//	                                 Assigned call (unix ns), the leader among them ("-"), when SETTLE
//	                                 is 1 that leader's GroupSettled(N) (1/0, "-" without a leader
//	                                 here), revocations for a lapsed lease, and members removed
//	                                 although the driver neither crashed nor closed them
//	statusall                        "ok OWNED LASTASSIGN" summed over every group
//	dump GROUP                       "INDEX ID" per held partition, then "end"
//	counts GROUP                     "ok HB_OK HB_FAILED VERDICTS LEASES_LOST": heartbeats the group's
//	                                 members here sent (acknowledged, failed), verdicts they appended
//	                                 and lapses of their leases, so far
//	gc                               GC, return memory to the OS: "ok RSS_KB HWM_KB HEAP_INUSE_B"
//	quit                             Stop every member and exit
const roleEnv = "PARTI_SCALE_ROLE"

// heapProfileEnv, when set in a worker's environment, names a file the
// "gc" command writes a heap profile to (go tool pprof reads it): where a
// member's memory goes at the size being measured.
const heapProfileEnv = "PARTI_SCALE_HEAPPROFILE"

// joinTries is how many times the worker calls Join for one member before
// it reports the join failed.
const joinTries = 3

// watchContextsEnv, when "1" in a worker's environment, makes its
// handlers take every assignment's Context.Done channel, as a handler that
// waits on them does (the contexts are lazy: one nobody looks at costs
// less).
const watchContextsEnv = "PARTI_SCALE_WATCH_CONTEXTS"

// workerConnName names the workers' connections (the driver counts their
// messages on the servers by it).
const workerConnName = "parti-scale-worker"

type wmember struct {
	m     *parti.Member
	group string
	id    string
	inc0  uint64 // the incarnation Join was granted
	dead  bool   // crashed or closed: late handler calls are ignored
	// ending: the driver is closing it (its stop is no false expiry).
	ending bool
}

type wgroup struct {
	holder     []string // per partition index: the member ID acting on it ("" none)
	owned      int
	lastAssign int64
	// leaseLost counts revocations because a lease lapsed; stopped counts
	// members that stopped without being crashed or closed by the driver
	// (removed: a false expiry, or refused).
	leaseLost, stopped int
	// metrics counts what the members here publish (every member of the
	// group in this process reports to it).
	metrics *countMetrics
}

// countMetrics counts the members' heartbeats, verdicts and lease lapses
// through the parti.Metrics hooks.
type countMetrics struct {
	parti.NopMetrics
	hbOK, hbFailed, verdicts, leasesLost atomic.Int64
}

// LeaseLost implements parti.Metrics.
func (c *countMetrics) LeaseLost() { c.leasesLost.Add(1) }

// Heartbeat implements parti.Metrics.
func (c *countMetrics) Heartbeat(ok bool) {
	if ok {
		c.hbOK.Add(1)
	} else {
		c.hbFailed.Add(1)
	}
}

// Verdict implements parti.Metrics.
func (c *countMetrics) Verdict() { c.verdicts.Add(1) }

type worker struct {
	js       jetstream.JetStream
	profile  string
	replicas int

	mu      sync.Mutex
	groups  map[string]*wgroup
	members map[string]*wmember // by GROUP/ID
	parts   map[int][]string    // partition sets by size, shared by every member
	watch   bool                // take every assignment's Done channel (watchContextsEnv)
	watched atomic.Int64        // Done channels taken
}

func workerMain(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	urls := os.Getenv("PARTI_SCALE_URLS")
	profile := os.Getenv("PARTI_SCALE_PROFILE")
	if os.Getenv(gcPressureEnv) != "" {
		go gcPressure(ctx)
	}
	replicas, _ := strconv.Atoi(os.Getenv("PARTI_SCALE_REPLICAS"))
	if urls == "" {
		return errors.New("worker: PARTI_SCALE_URLS is empty")
	}
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Name(workerConnName))
	if err != nil {
		return fmt.Errorf("worker: connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("worker: jetstream: %w", err)
	}
	w := &worker{js: js, profile: profile, replicas: replicas, groups: map[string]*wgroup{}, members: map[string]*wmember{}, parts: map[int][]string{}, watch: os.Getenv(watchContextsEnv) == "1"}
	defer w.stopAll()
	out := bufio.NewWriterSize(stdout, 1<<16)
	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "quit" {
			fmt.Fprintln(out, "ok")
			return out.Flush()
		}
		if err := w.do(ctx, f, out); err != nil {
			fmt.Fprintf(out, "err %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
	return in.Err()
}

func (w *worker) do(ctx context.Context, f []string, out io.Writer) error {
	switch f[0] {
	case "join":
		if len(f) < 4 {
			return errors.New("join: want PARTS EXPECTED GROUP/ID...")
		}
		parts, err1 := strconv.Atoi(f[1])
		expected, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || parts < 1 || expected < 0 {
			return fmt.Errorf("join: bad PARTS %q or EXPECTED %q", f[1], f[2])
		}
		if err := w.join(ctx, parts, expected, f[3:]); err != nil {
			return err
		}
		fmt.Fprintln(out, "ok")
		return nil
	case "crash":
		if len(f) != 2 {
			return errors.New("crash: want GROUP/ID")
		}
		t0, err := w.crash(f[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "ok %d\n", t0)
		return nil
	case "close":
		if len(f) != 2 {
			return errors.New("close: want GROUP/ID")
		}
		if err := w.close(ctx, f[1]); err != nil {
			return err
		}
		fmt.Fprintln(out, "ok")
		return nil
	case "status":
		if len(f) != 4 {
			return errors.New("status: want GROUP N SETTLE")
		}
		n, _ := strconv.Atoi(f[2])
		fmt.Fprintln(out, w.status(f[1], n, f[3] == "1"))
		return nil
	case "statusall":
		w.mu.Lock()
		owned, last := 0, int64(0)
		for _, g := range w.groups {
			owned += g.owned
			last = max(last, g.lastAssign)
		}
		w.mu.Unlock()
		fmt.Fprintf(out, "ok %d %d\n", owned, last)
		return nil
	case "counts":
		if len(f) != 2 {
			return errors.New("counts: want GROUP")
		}
		w.mu.Lock()
		g := w.groups[f[1]]
		w.mu.Unlock()
		var ok, failed, verdicts, lost int64
		if g != nil {
			ok, failed, verdicts, lost = g.metrics.hbOK.Load(), g.metrics.hbFailed.Load(), g.metrics.verdicts.Load(), g.metrics.leasesLost.Load()
		}
		fmt.Fprintf(out, "ok %d %d %d %d\n", ok, failed, verdicts, lost)
		return nil
	case "dump":
		if len(f) != 2 {
			return errors.New("dump: want GROUP")
		}
		w.mu.Lock()
		if g := w.groups[f[1]]; g != nil {
			for i, h := range g.holder {
				if h != "" {
					fmt.Fprintf(out, "%d %s\n", i, h)
				}
			}
		}
		w.mu.Unlock()
		fmt.Fprintln(out, "end")
		return nil
	case "gc":
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rss, hwm := procMemKB(os.Getpid())
		if path := os.Getenv(heapProfileEnv); path != "" {
			if err := writeHeapProfile(path); err != nil {
				return err
			}
		}
		// How many of its members' assignment contexts exist now (they
		// are made when a handler looks), and how many the handler looked
		// at in all.
		made := 0
		w.mu.Lock()
		for _, m := range w.members {
			if m.m != nil {
				_, live := testhooks.LiveContexts(m.m)
				made += live
			}
		}
		w.mu.Unlock()
		fmt.Fprintf(out, "ok %d %d %d %d %d\n", rss, hwm, ms.HeapInuse, made, w.watched.Load())
		return nil
	}
	return fmt.Errorf("unknown command %q", f[0])
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func (w *worker) partitions(n int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := w.parts[n]; ok {
		return p
	}
	p := make([]string, n)
	for i := range p {
		p[i] = fmt.Sprintf("p-%06d", i)
	}
	w.parts[n] = p
	return p
}

func (w *worker) config(group string) parti.Config {
	c, _ := groupConfig(w.profile, group)
	return c
}

// join joins every GROUP/ID of specs at once (at most 64 Joins in flight).
func (w *worker) join(ctx context.Context, parts, expected int, specs []string) error {
	ps := w.partitions(parts)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var errs []error
	for _, spec := range specs {
		group, id, ok := strings.Cut(spec, "/")
		if !ok || group == "" || id == "" {
			return fmt.Errorf("join: %q is not GROUP/ID", spec)
		}
		w.mu.Lock()
		g := w.groups[group]
		if g == nil {
			g = &wgroup{holder: make([]string, parts), metrics: &countMetrics{}}
			w.groups[group] = g
		}
		rec := &wmember{group: group, id: id}
		w.members[spec] = rec
		w.mu.Unlock()
		cfg := w.config(group)
		cfg.ID = id
		cfg.Partitions = ps
		cfg.ExpectedMembers = expected
		cfg.Replicas = w.replicas
		cfg.Handler = w.handler(g, rec)
		cfg.Metrics = g.metrics
		if os.Getenv("PARTI_SCALE_DEBUG") != "" {
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("member", id)
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// A Join gives up after its own 30 s of JetStream requests
			// timing out; on a saturated machine (50 joining at once into
			// 500 members over 100,000 partitions) the harness joins again,
			// as a restarted process would, and says so on stderr.
			m, err := parti.Join(ctx, w.js, cfg)
			for try := 2; err != nil && try <= joinTries && ctx.Err() == nil && !errors.Is(err, parti.ErrInvalidConfig); try++ {
				fmt.Fprintf(os.Stderr, "worker: join retry %d of %s after: %v\n", try, spec, err)
				m, err = parti.Join(ctx, w.js, cfg)
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", spec, err))
				rec.dead = true
				return
			}
			rec.m = m
			rec.inc0 = m.Incarnation()
			go func() {
				<-m.Done()
				w.mu.Lock()
				defer w.mu.Unlock()
				if !rec.dead && !rec.ending {
					g.stopped++
					fmt.Fprintf(os.Stderr, "parti-scale worker: %s stopped on its own: %v\n", spec, m.Err())
					w.forget(rec)
				}
			}()
		}()
	}
	wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(errs) == 0 {
		return nil
	}
	// The reply is one line: how many failed, and the first few.
	first := errs[:min(3, len(errs))]
	return fmt.Errorf("%d of %d joins failed, first: %w", len(errs), len(specs), errors.Join(first...))
}

func (w *worker) handler(g *wgroup, rec *wmember) parti.Handler {
	return parti.HandlerFuncs{
		OnAssigned: func(a parti.Assignment) {
			if w.watch {
				_ = a.Context.Done()
				w.watched.Add(1)
			}
			now := time.Now().UnixNano()
			w.mu.Lock()
			defer w.mu.Unlock()
			if rec.dead || int(a.Index) >= len(g.holder) {
				return
			}
			if g.holder[a.Index] == "" {
				g.owned++
			}
			g.holder[a.Index] = rec.id
			g.lastAssign = max(g.lastAssign, now)
		},
		OnRevoked: func(a parti.Assignment, why parti.RevokeReason) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if why == parti.RevokeLeaseLost {
				g.leaseLost++
			}
			if int(a.Index) < len(g.holder) && g.holder[a.Index] == rec.id {
				g.holder[a.Index] = ""
				g.owned--
			}
		},
	}
}

// forget drops what the member held from its group's view (under w.mu).
func (w *worker) forget(rec *wmember) {
	rec.dead = true
	g := w.groups[rec.group]
	for i, h := range g.holder {
		if h == rec.id {
			g.holder[i] = ""
			g.owned--
		}
	}
	for k, r := range w.members {
		if r == rec {
			delete(w.members, k)
		}
	}
}

func (w *worker) lookup(spec string) (*wmember, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	rec := w.members[spec]
	if rec == nil || rec.m == nil || rec.dead {
		return nil, fmt.Errorf("no running member %s here", spec)
	}
	return rec, nil
}

func (w *worker) crash(spec string) (int64, error) {
	rec, err := w.lookup(spec)
	if err != nil {
		return 0, err
	}
	t0 := time.Now().UnixNano()
	w.mu.Lock()
	w.forget(rec) // a crashed process acts on nothing from now on
	w.mu.Unlock()
	rec.m.Stop()
	return t0, nil
}

func (w *worker) close(ctx context.Context, spec string) error {
	rec, err := w.lookup(spec)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	w.mu.Lock()
	rec.ending = true
	w.mu.Unlock()
	err = rec.m.Close(ctx)
	w.mu.Lock()
	w.forget(rec)
	w.mu.Unlock()
	return err
}

func (w *worker) status(group string, n int, settle bool) string {
	w.mu.Lock()
	g := w.groups[group]
	owned, last, leaseLost, stopped := 0, int64(0), 0, 0
	if g != nil {
		owned, last, leaseLost, stopped = g.owned, g.lastAssign, g.leaseLost, g.stopped
	}
	var ms []*wmember
	for _, r := range w.members {
		if r.group == group && !r.dead && r.m != nil {
			ms = append(ms, r)
		}
	}
	w.mu.Unlock()
	slices.SortFunc(ms, func(a, b *wmember) int { return strings.Compare(a.id, b.id) })
	leader, settled := "-", "-"
	rejoined := 0
	for _, r := range ms {
		if r.m.Incarnation() != r.inc0 {
			rejoined++ // removed while running, and joined again as a new incarnation
		}
	}
	for _, r := range ms {
		if r.m.IsLeader() {
			leader = r.id
			if settle {
				settled = "0"
				if r.m.GroupSettled(n) {
					settled = "1"
				}
			}
			break
		}
	}
	return fmt.Sprintf("ok %d %d %s %s %d %d", owned, last, leader, settled, leaseLost, stopped+rejoined)
}

func (w *worker) stopAll() {
	w.mu.Lock()
	var ms []*parti.Member
	for _, r := range w.members {
		if r.m != nil && !r.dead {
			r.ending = true
			ms = append(ms, r.m)
		}
	}
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() { defer wg.Done(); m.Stop() }()
	}
	wg.Wait()
}

// procMemKB returns VmRSS and VmHWM of process pid, in kB (0 where unknown).
func procMemKB(pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss, _ = strconv.ParseInt(f[1], 10, 64)
		case "VmHWM:":
			hwm, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return rss, hwm
}

// procCPU returns the user+system CPU time of process pid so far.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}
