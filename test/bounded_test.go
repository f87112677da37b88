package test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
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
}

func (s resourceSample) String() string {
	return fmt.Sprintf("t=%v hb=%d msgs on %d subjects (max %d) snap=%d log=%d bytes=%d goroutines=%d heap=%.1fMiB",
		s.at.Round(time.Second), s.hbMsgs, s.hbSubjects, s.hbMax, s.snapMsgs, s.logMsgs, s.bytes, s.goroutines, float64(s.heap)/(1<<20))
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
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.heap = ms.HeapAlloc
	return s, nil
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
// the heap stay flat; once the members leave, no goroutine of parti is
// left. make test samples 12 s (four heartbeat TTLs of 3 s, after a warm-up
// of 5 s); make soak samples SOAK_DURATION.
//
// The leader writes a snapshot only after SnapshotEvery log records, so a
// steady group writes none: the test writes one of the first member's fold
// every 250 ms itself (as a leader refreshing its snapshot would) to check
// that the snapshot subject is bounded by the TTL.
func TestBoundedResources(t *testing.T) {
	d := soakDuration(t)
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
	const snapEvery = 250 * time.Millisecond
	snapCtx, stopSnaps := context.WithCancel(ctx)
	var snapWG sync.WaitGroup
	snapWG.Add(1)
	var snapsWritten int
	go func() {
		defer snapWG.Done()
		app := projection.NewAppender(js, subj)
		tick := time.NewTicker(snapEvery)
		defer tick.Stop()
		for {
			select {
			case <-snapCtx.Done():
				return
			case <-tick.C:
			}
			m := f.all()[0]
			if err := projection.WriteSnapshot(snapCtx, app, m.State(), base.SnapshotTTL, 0); err != nil && snapCtx.Err() == nil {
				t.Errorf("snapshot: %v", err)
				return
			}
			snapsWritten++
		}
	}()
	defer func() { stopSnaps(); snapWG.Wait() }()

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
	stopSnaps()
	snapWG.Wait()
	if len(samples) < 6 {
		t.Fatalf("only %d samples", len(samples))
	}
	third := len(samples) / 3
	early, late := samples[:third], samples[len(samples)-third:]
	t.Logf("%d samples every %v over %v; %d snapshots written; first %v", len(samples), every, d, snapsWritten, samples[0])
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
	if e, l := maxOf(early, func(s resourceSample) uint64 { return s.heap }), maxOf(late, func(s resourceSample) uint64 { return s.heap }); l > e+e/2+8<<20 {
		t.Errorf("the heap grew from %.1f MiB (early max) to %.1f MiB (late max)", float64(e)/(1<<20), float64(l)/(1<<20))
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

// checkLogGrowsOnlyWithChanges folds group's whole log and fails the test
// for every record after sequence after that left the group's durable state
// as it was (its sequence and the fold's counters aside): a log that grows
// with time instead of with changes. It returns the number of log records
// after after.
func checkLogGrowsOnlyWithChanges(t *testing.T, ctx context.Context, js jetstream.JetStream, group string, after uint64) int {
	t.Helper()
	content := func(s *decider.State) string {
		c := s.Clone()
		c.LastSeq, c.Counters = 0, decider.Counters{}
		data, _, err := decider.Snapshot(c)
		if err != nil {
			return "busy" // in the middle of a multi-part event
		}
		return string(data)
	}
	var (
		n     int
		kinds []string
		s     = decider.New()
		bad   []string
	)
	p, err := projection.Start(ctx, js, projection.Config{Group: group, SkipSnapshot: true,
		OnRecord: func(r events.Record, _ decider.Outcome) {
			if r.Seq <= after {
				decider.Apply(s, r)
				return
			}
			n++
			was := content(s)
			out := decider.Apply(s, r)
			what := "garbage"
			if r.Event != nil {
				what = r.Event.Type().String()
			}
			kinds = append(kinds, fmt.Sprintf("%d:%s", r.Seq, what))
			if out.Kind != decider.Partial && content(s) == was {
				bad = append(bad, fmt.Sprintf("log record %d (%s, %s %s) changed nothing", r.Seq, what, out.Kind, out.Reason))
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	newest, err := p.Newest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitFor(ctx, newest); err != nil {
		t.Fatal(err)
	}
	p.Stop() // the hook's variables are ours now
	if n > 0 {
		t.Logf("the log grew by %d records after the warm-up: %s", n, strings.Join(kinds, " "))
	}
	for _, b := range bad {
		t.Errorf("%s: the log grew without a change to the group", b)
	}
	return n
}
