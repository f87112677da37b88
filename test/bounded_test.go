package test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/projection"
)

// soakDuration is how long TestBoundedResources samples a steady group:
// SOAK_DURATION (make soak: an hour by default), or 12 s in make test.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("SOAK_DURATION")
	if v == "" {
		return 12 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 5*time.Second {
		t.Fatalf("SOAK_DURATION=%q: want a duration of at least 5s", v)
	}
	return d
}

// resourceSample is one reading of the stream's per-subject state and of
// the process.
type resourceSample struct {
	at         time.Duration
	hbSubjects int    // heartbeat subjects holding messages
	hbMax      uint64 // messages on the fullest heartbeat subject
	hbMsgs     uint64 // messages on every heartbeat subject
	snapMsgs   uint64
	logMsgs    uint64
	bytes      uint64 // the whole stream
	goroutines int    // parti's goroutines (partiGoroutines)
	heap       uint64 // live heap after a GC (the embedded server's too)
	// clientHeap estimates the live heap allocated outside the embedded
	// server (the members, nats.go, the test), serverHeap the server's:
	// from the heap profile (heapSplit).
	clientHeap, serverHeap uint64
}

func (s resourceSample) String() string {
	return fmt.Sprintf("t=%v hb=%d msgs on %d subjects (max %d) snap=%d log=%d bytes=%d goroutines=%d heap=%.1fMiB (members+client ≈%.1fMiB, server ≈%.1fMiB)",
		s.at.Round(time.Second), s.hbMsgs, s.hbSubjects, s.hbMax, s.snapMsgs, s.logMsgs, s.bytes, s.goroutines,
		mib(s.heap), mib(s.clientHeap), mib(s.serverHeap))
}

func sampleResources(ctx context.Context, st jetstream.Stream, subj events.Subjects, since time.Time) (resourceSample, error) {
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subj.All()))
	if err != nil {
		return resourceSample{}, err
	}
	s := resourceSample{at: time.Since(since), bytes: info.State.Bytes}
	for name, n := range info.State.Subjects {
		switch kind, _, _ := subj.Parse(name); kind {
		case events.SubjectHeartbeat:
			s.hbSubjects++
			s.hbMsgs += n
			s.hbMax = max(s.hbMax, n)
		case events.SubjectSnapshot:
			s.snapMsgs += n
		case events.SubjectLog:
			s.logMsgs += n
		}
	}
	s.goroutines = len(partiGoroutines())
	s.clientHeap, s.serverHeap = heapSplit()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.heap = ms.HeapAlloc
	return s, nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// heapSplit estimates, from the heap profile after two GCs, the live heap
// allocated outside the embedded nats-server (the members, nats.go, the
// test) and by the server, which runs in this process: the server's file
// store keeps a write cache of its active message block that grows with
// every message, expired ones included, until the block (several MiB) is
// full. Sampled allocations are scaled as pprof scales them.
func heapSplit() (client, server uint64) {
	runtime.GC()
	runtime.GC() // the profile lags a cycle
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, false)
	for {
		recs = make([]runtime.MemProfileRecord, n+64)
		var ok bool
		if n, ok = runtime.MemProfile(recs, false); ok {
			recs = recs[:n]
			break
		}
	}
	rate := float64(runtime.MemProfileRate)
	for i := range recs {
		r := &recs[i]
		if r.InUseObjects() <= 0 || r.AllocObjects <= 0 {
			continue
		}
		avg := float64(r.AllocBytes) / float64(r.AllocObjects)
		b := uint64(float64(r.InUseBytes()) / (1 - math.Exp(-avg/rate)))
		frames := runtime.CallersFrames(r.Stack())
		inServer := false
		for {
			f, more := frames.Next()
			if strings.Contains(f.Function, "nats-io/nats-server/") {
				inServer = true
				break
			}
			if !more {
				break
			}
		}
		if inServer {
			server += b
		} else {
			client += b
		}
	}
	return client, server
}

// maxOf returns the largest value of f over samples.
func maxOf[T int | uint64](samples []resourceSample, f func(resourceSample) T) T {
	var m T
	for _, s := range samples {
		m = max(m, f(s))
	}
	return m
}

// A steady group at the fast profile, sampled over many heartbeat and
// snapshot TTLs: heartbeat and snapshot storage stay bounded by their TTLs,
// the log grows only with changes to the group, and parti's goroutines and
// the heap outside the embedded server stay flat (the server's own heap is
// reported: its file store caches the active message block); once the
// members leave, no goroutine of parti is left. make test samples 12 s (four heartbeat TTLs of 3 s, after a warm-up
// of 5 s); make soak samples SOAK_DURATION.
//
// A steady group appends nothing, so its leader writes the snapshot again
// every half TTL (2 s here): the snapshot subject must never be empty and
// stay bounded by the TTL.
func TestBoundedResources(t *testing.T) {
	d := soakDuration(t)
	// Sample the heap finely enough to tell the members' few MiB apart.
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 16 << 10
	ctx, cancel := context.WithTimeout(context.Background(), d+5*time.Minute)
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	const group = "bounded"
	f := newFleet(t, js, group, 64)
	base := parti.Fast(group)
	base.Partitions = f.parts
	base.HeartbeatTTL = 2 * base.Timings.Expiry // 3 s: the least Validate allows
	base.SnapshotTTL = 2 * time.Second
	base.SnapshotEvery = 4
	f.base = base
	coldStart(t, ctx, f, 3)

	subj, _ := events.NewSubjects(group)
	st, err := js.Stream(ctx, projection.StreamName(group))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The leader writes the snapshot again every half TTL while the group
	// stands still.
	snapEvery := base.SnapshotTTL / 2

	// Warm up: every heartbeat subject has filled up to its TTL.
	warm := base.HeartbeatTTL + 2*time.Second
	waitFor(t, time.Minute, "the warm-up", func() bool { return time.Since(start) > warm })
	f.waitSettled(30 * time.Second)
	incs := map[string]uint64{}
	for _, m := range f.all() {
		incs[m.ID()] = m.Incarnation()
	}
	warmLog, found, err := projection.NewAppender(js, subj).LastOnSubject(ctx, subj.Log())
	if err != nil || !found {
		t.Fatalf("the log's last record: %v (found %v)", err, found)
	}

	every := max(time.Second, d/120)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var samples []resourceSample
	for deadline := start.Add(warm + d); time.Now().Before(deadline); {
		<-tick.C
		smp, err := sampleResources(ctx, st, subj, start)
		if err != nil {
			t.Fatal(err)
		}
		samples = append(samples, smp)
		if len(samples)%max(1, len(samples)/10) == 0 && d > time.Minute {
			t.Log(smp)
		}
		for _, m := range f.all() {
			if err := m.Err(); err != nil {
				t.Fatalf("member %s stopped: %v", m.ID(), err)
			}
		}
	}
	if len(samples) < 6 {
		t.Fatalf("only %d samples", len(samples))
	}
	third := len(samples) / 3
	early, late := samples[:third], samples[len(samples)-third:]
	t.Logf("%d samples every %v over %v; first %v", len(samples), every, d, samples[0])
	t.Logf("last %v", samples[len(samples)-1])

	// Heartbeats and snapshots: bounded by their TTLs. A subject holds
	// what was written within one TTL, plus what the server's expiry
	// (about a second late) has not removed yet: twice that is generous.
	hbBound := 2*uint64(base.HeartbeatTTL/base.Timings.Heartbeat) + 4
	snapBound := 2*uint64(base.SnapshotTTL/snapEvery) + 4
	for _, smp := range samples {
		switch {
		case smp.hbMax > hbBound:
			t.Errorf("a heartbeat subject holds %d messages, more than its TTL allows (%d): %v", smp.hbMax, hbBound, smp)
		case smp.hbSubjects > 2*len(incs):
			t.Errorf("%d heartbeat subjects hold messages for %d members: %v", smp.hbSubjects, len(incs), smp)
		case smp.snapMsgs > snapBound:
			t.Errorf("the snapshot subject holds %d messages, more than its TTL allows (%d): %v", smp.snapMsgs, snapBound, smp)
		case smp.snapMsgs == 0:
			t.Errorf("the snapshot subject is empty: the leader let its snapshot expire: %v", smp)
		}
	}

	// The log: every record after the warm-up changed the group (none, in
	// a group that stayed steady).
	grew := checkLogGrowsOnlyWithChanges(t, ctx, js, group, warmLog.Seq)
	for _, m := range f.all() {
		if m.Incarnation() != incs[m.ID()] {
			t.Logf("%s was expired and rejoined during the run (a stall of this machine): the group changed", m.ID())
		}
	}
	if grew == 0 {
		for _, smp := range samples {
			if smp.logMsgs != samples[0].logMsgs {
				t.Errorf("the log subject went from %d to %d messages while the group did not change", samples[0].logMsgs, smp.logMsgs)
				break
			}
		}
	}

	// Flat: the stream's bytes (log growth allowed for), parti's
	// goroutines and the heap, late against early.
	if e, l := maxOf(early, func(s resourceSample) uint64 { return s.bytes }), maxOf(late, func(s resourceSample) uint64 { return s.bytes }); l > e+e/4+4096+2048*uint64(grew) {
		t.Errorf("the stream grew from %d bytes (early max) to %d (late max) with %d log records", e, l, grew)
	}
	if e, l := maxOf(early, func(s resourceSample) int { return s.goroutines }), maxOf(late, func(s resourceSample) int { return s.goroutines }); l > e+6 {
		t.Errorf("parti's goroutines grew from %d (early max) to %d (late max)", e, l)
	}
	if e, l := maxOf(early, func(s resourceSample) uint64 { return s.clientHeap }), maxOf(late, func(s resourceSample) uint64 { return s.clientHeap }); l > e+e/2+4<<20 {
		t.Errorf("the heap outside the server grew from ≈%.1f MiB (early max) to ≈%.1f MiB (late max)", mib(e), mib(l))
	}

	for _, m := range f.all() {
		if err := m.Leave(ctx); err != nil && !errors.Is(err, parti.ErrStopped) {
			t.Fatal(err)
		}
	}
	var left []string
	deadline := time.Now().Add(30 * time.Second)
	waitFor(t, time.Minute, "parti's goroutines to end after every member left", func() bool {
		left = partiGoroutines()
		return len(left) == 0 || time.Now().After(deadline)
	})
	if len(left) > 0 {
		t.Fatalf("%d goroutines of parti left after every member left:\n%s", len(left), strings.Join(left, "\n\n"))
	}
}

// logGrowth folds group's whole log and returns the log records after
// sequence after, and those of them that left the group's durable state as
// it was (its sequence and the fold's counters aside) although no record
// that did change it came at most window before (by server time). A change
// may bring a few records that change nothing (a second member's idempotent
// removal of the same verdict, a decision that lost a race); a log that
// grows with time shows records that change nothing far from any change.
func logGrowth(ctx context.Context, js jetstream.JetStream, group string, after uint64, window time.Duration) (records, bad []string, err error) {
	content := func(s *decider.State) string {
		c := s.Clone()
		c.LastSeq, c.Counters = 0, decider.Counters{}
		data, _, err := decider.Snapshot(c)
		if err != nil {
			return "busy" // in the middle of a multi-part event
		}
		return string(data)
	}
	s := decider.New()
	var lastChange time.Time
	p, err := projection.Start(ctx, js, projection.Config{Group: group, SkipSnapshot: true,
		OnRecord: func(r events.Record, _ decider.Outcome) {
			if r.Seq <= after {
				decider.Apply(s, r)
				return
			}
			was := content(s)
			out := decider.Apply(s, r)
			what := "garbage"
			if r.Event != nil {
				what = r.Event.Type().String()
			}
			records = append(records, fmt.Sprintf("%d:%s", r.Seq, what))
			switch {
			case out.Kind == decider.Partial:
			case content(s) != was:
				lastChange = r.Time
			case lastChange.IsZero() || r.Time.Sub(lastChange) > window:
				bad = append(bad, fmt.Sprintf("log record %d (%s, %s %s) changed nothing, and nothing changed in the %v before it", r.Seq, what, out.Kind, out.Reason, window))
			}
		}})
	if err != nil {
		return nil, nil, err
	}
	defer p.Stop()
	newest, err := p.Newest(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := p.WaitFor(ctx, newest); err != nil {
		return nil, nil, err
	}
	p.Stop() // the hook's variables are ours now
	return records, bad, nil
}

// checkLogGrowsOnlyWithChanges fails the test for every log record after
// sequence after that changed nothing far from any change (logGrowth, within
// 10 s) and returns the number of log records after after.
func checkLogGrowsOnlyWithChanges(t *testing.T, ctx context.Context, js jetstream.JetStream, group string, after uint64) int {
	t.Helper()
	records, bad, err := logGrowth(ctx, js, group, after, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(records) > 0 {
		t.Logf("the log grew by %d records after the warm-up: %s", len(records), strings.Join(records, " "))
	}
	for _, b := range bad {
		t.Errorf("%s: the log grew without a change to the group", b)
	}
	return len(records)
}

// The log-growth check flags a record that changes nothing, away from any
// change, and accepts one right after a change.
func TestLogGrowthCheckFlagsNoOps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	if _, err := projection.Provision(ctx, js, projection.StreamConfig{Group: "growth"}); err != nil {
		t.Fatal(err)
	}
	subj, _ := events.NewSubjects("growth")
	app := projection.NewAppender(js, subj)
	c, _ := decider.Claim("a", "na", 0)
	noop := &events.MemberRemoved{Member: "nobody", Incarnation: 1, Reason: events.ReasonForced}
	for _, ev := range []events.Event{c, noop} {
		if _, err := app.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	records, bad, err := logGrowth(ctx, js, "growth", 0, time.Hour)
	if err != nil || len(records) != 2 || len(bad) != 0 {
		t.Fatalf("a no-op right after a change: records %v, flagged %v, %v", records, bad, err)
	}
	if _, bad, _ = logGrowth(ctx, js, "growth", 0, -1); len(bad) != 1 {
		t.Fatalf("a no-op outside the window: flagged %v", bad)
	}
	if _, bad, _ = logGrowth(ctx, js, "growth", 1, time.Hour); len(bad) != 1 {
		t.Fatalf("a no-op with no change before it: flagged %v", bad)
	}
}
