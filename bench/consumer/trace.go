package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sync/atomic"
	"syscall"
	"time"
)

// tailTrace records, for each tail message a system handled, when it was
// published, stored by the server (the JetStream metadata timestamp) and
// handed to the handler, by which member: TRACE=1 prints where the tail's
// slow messages lost their time.
type tailTrace struct {
	next atomic.Int64 // slots taken
	recs []traceRec   // one slot per message: no lock on the handlers' path
}

func newTailTrace(n int) *tailTrace { return &tailTrace{recs: make([]traceRec, n)} }

type traceRec struct {
	pub, srv, hnd int64 // unix nanos
	member        int
	part          string
}

func (t *tailTrace) add(member int, part string, pub int64, srv time.Time, hnd int64) {
	if t == nil || pub == 0 {
		return
	}
	if i := t.next.Add(1) - 1; i < int64(len(t.recs)) {
		t.recs[i] = traceRec{pub: pub, srv: srv.UnixNano(), hnd: hnd, member: member, part: part}
	}
}

// report prints the quantiles of each leg and the slowest messages, with
// their time since the first publish, so stalls show as clusters in time.
func (t *tailTrace) report(out io.Writer, name string) {
	t.recs = t.recs[:min(t.next.Load(), int64(len(t.recs)))]
	if len(t.recs) == 0 {
		return
	}
	q := func(f func(r traceRec) int64) string {
		v := make([]int64, len(t.recs))
		for i, r := range t.recs {
			v[i] = f(r)
		}
		slices.Sort(v)
		at := func(p float64) float64 { return float64(v[min(len(v)-1, int(float64(len(v))*p))]) / 1e6 }
		return fmt.Sprintf("p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f ms", at(.5), at(.9), at(.99), at(.999), at(1))
	}
	fmt.Fprintf(out, "trace %s: %d messages\n", name, len(t.recs))
	fmt.Fprintf(out, "  publish→stored  %s\n", q(func(r traceRec) int64 { return r.srv - r.pub }))
	fmt.Fprintf(out, "  stored→handler  %s\n", q(func(r traceRec) int64 { return r.hnd - r.srv }))
	fmt.Fprintf(out, "  publish→handler %s\n", q(func(r traceRec) int64 { return r.hnd - r.pub }))
	t0 := t.recs[0].pub
	for _, r := range t.recs {
		t0 = min(t0, r.pub)
	}
	// Per 100 ms of publish time: the worst latency, to see stalls.
	buckets := map[int64]int64{}
	for _, r := range t.recs {
		k := (r.pub - t0) / int64(100*time.Millisecond)
		buckets[k] = max(buckets[k], r.hnd-r.pub)
	}
	keys := slices.Sorted(maps.Keys(buckets))
	fmt.Fprintf(out, "  worst per 100 ms of publish time (ms):")
	for _, k := range keys {
		fmt.Fprintf(out, " %d", buckets[k]/1e6)
	}
	fmt.Fprintln(out)
	// Per member: the share of messages slower than 20 ms.
	slow := map[int][2]int{}
	for _, r := range t.recs {
		c := slow[r.member]
		c[1]++
		if r.hnd-r.pub > int64(20*time.Millisecond) {
			c[0]++
		}
		slow[r.member] = c
	}
	ms := slices.Sorted(maps.Keys(slow))
	fmt.Fprintf(out, "  >20ms per member:")
	for _, m := range ms {
		fmt.Fprintf(out, " m%d:%d/%d", m, slow[m][0], slow[m][1])
	}
	fmt.Fprintln(out)
	t.recs = nil
}

// procCPU returns the CPU time the process used so far (user and system).
func procCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
