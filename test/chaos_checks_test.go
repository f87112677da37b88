package test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/testhooks"
	"github.com/parti-io/parti/replay"
)

// checkLoop runs the continuous checks until stop is closed.
func (r *chaosRig) checkLoop(stop, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if r.t.Failed() {
			continue // reported once; the fault loop stops the test
		}
		r.checkNoOverlap()
		for _, m := range r.all() {
			if err := r.states.sample(m.name, m.c.Member().State()); err != nil {
				r.t.Errorf("seed %d: %v", r.seed, err)
			}
			r.watchLoop(m)
		}
		if v := r.led.violations(); len(v) > 0 {
			r.t.Errorf("seed %d: %s", r.seed, strings.Join(v, "; "))
		}
	}
}

// watchLoop logs (a few times a run) where a running member's loop is when
// its lease has not been renewed for longer than the expiry: a diagnosis
// of members that stop heartbeating without a fault of their own.
func (r *chaosRig) watchLoop(m *chaosMember) {
	mem := m.c.Member()
	d := testhooks.LeaseDeadline(mem)
	if d == 0 || mem.Err() != nil || r.now()-d < r.env.timings.Expiry {
		return
	}
	r.mu.Lock()
	w := r.current
	mine := w != nil && w.who == m.name
	// A server fault stops every lease: only a lapse that began before it
	// or after its heal says something.
	server := w != nil && w.who == "" && d >= w.start && (w.healed == 0 || d <= w.healed)
	if mine || server || r.dumped[m.name] || r.loopDumps >= 3 {
		r.mu.Unlock()
		return
	}
	r.loopDumps++
	r.dumped[m.name] = true
	r.mu.Unlock()
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var loops []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "parti.(*Member).loop") {
			loops = append(loops, g)
		}
	}
	r.note("%s: lease not renewed for %v", m.name, r.now()-d)
	r.t.Logf("seed %d: %s's lease was not renewed for %v; member loops:\n%s", r.seed, m.name, r.now()-d, strings.Join(loops, "\n\n"))
}

func (r *chaosRig) checkNoOverlap() {
	r.mu.Lock()
	leases := map[string]func() time.Duration{}
	for k, v := range r.leases {
		leases[k] = v
	}
	r.mu.Unlock()
	r.rec.checkNoOverlap(r.t, leases)
}

// checkSameState: every member holds the identical state at the same
// sequence.
func (r *chaosRig) checkSameState() {
	var hashes []string
	for _, m := range r.all() {
		s := m.c.Member().State()
		_, h, err := decider.Snapshot(s)
		if err != nil {
			r.fatalf("snapshot of %s: %v", m.name, err)
		}
		if err := r.states.sample(m.name, s); err != nil {
			r.t.Errorf("seed %d: %v", r.seed, err)
		}
		hashes = append(hashes, fmt.Sprintf("%s@%d", h, s.LastSeq))
	}
	if len(slices.Compact(slices.Sorted(slices.Values(hashes)))) != 1 {
		r.t.Errorf("seed %d: members disagree at the end: %v", r.seed, hashes)
	}
}

// protocolBump appends a stray well-formed envelope of a newer protocol
// version to the log (and to every member's heartbeat subject) while every
// member is live, and checks that it stops nobody: it is junk (DESIGN rule 8,
// issue 12: one stray message used to stop the fleet for good). Two expiries
// later every member runs with the same incarnation and none folded a newer
// version. It returns the stray record's sequence and the number of log
// records after it.
func (r *chaosRig) protocolBump() (uint64, int) {
	r.t.Helper()
	ms := r.all()
	incs := map[string]uint64{}
	for _, m := range ms {
		incs[m.name] = m.c.Member().Incarnation()
	}
	bumpSeq := appendNewerVersion(r.t, r.ctx, r.admin, r.group)
	subj, _ := events.NewSubjects(r.group)
	body := events.MustEncode(events.MaxVersion+1, &events.Heartbeat{Nonce: "a-newer-build"})
	for _, m := range ms {
		mb := m.c.Member()
		if _, err := r.admin.Publish(r.ctx, subj.Heartbeat(mb.ID(), mb.Incarnation()), body); err != nil {
			r.t.Logf("seed %d: publishing a newer-version heartbeat on %s's subject: %v", r.seed, m.name, err)
		}
	}
	<-time.After(2 * r.env.timings.Expiry)
	for _, m := range ms {
		mb := m.c.Member()
		select {
		case <-mb.Done():
			r.t.Errorf("seed %d: %s stopped (%v) after a stray newer-version record", r.seed, m.name, mb.Err())
			continue
		default:
		}
		if inc := mb.Incarnation(); inc != incs[m.name] {
			r.t.Errorf("seed %d: %s went from incarnation %d to %d after a stray newer-version record", r.seed, m.name, incs[m.name], inc)
		}
		s := mb.State()
		if s.NewerVersionAt != 0 {
			r.t.Errorf("seed %d: %s folded a newer version at %d from a stray record", r.seed, m.name, s.NewerVersionAt)
		}
		if err := r.states.sample(m.name, s); err != nil {
			r.t.Errorf("seed %d: %v", r.seed, err)
		}
	}
	return bumpSeq, len(logAfter(r.t, r.ctx, r.admin, r.group, bumpSeq))
}

// refoldAndCompare folds the group's log from the start, independently of
// every member, and compares every sampled state with it at the sampled
// sequence. It returns the number of removals (expiries) folded.
func (r *chaosRig) refoldAndCompare() int {
	r.t.Helper()
	return refoldCompare(r.t, r.ctx, r.admin, r.group, r.states, fmt.Sprintf("seed %d: ", r.seed))
}

// refoldCompare folds group's log from the start, independently of every
// member, and checks every state in samples against it at its sequence. It
// returns the number of removals folded.
func refoldCompare(t *testing.T, ctx context.Context, js jetstream.JetStream, group string, samples *stateSampler, prefix string) int {
	t.Helper()
	src, err := replay.NewStreamSource(ctx, js, group)
	if err != nil {
		t.Fatalf("%sreplay source: %v", prefix, err)
	}
	s := decider.New()
	checked, removals := 0, 0
	want := samples.copy()
	err = src.Scan(ctx, replay.ScanOptions{LogOnly: true, SkipHeaders: true}, func(rec *events.Record) error {
		decider.Apply(s, *rec)
		if _, ok := rec.Event.(*events.MemberRemoved); ok {
			removals++
		}
		h, ok := want[rec.Seq]
		if !ok {
			return nil
		}
		_, got, err := decider.Snapshot(s)
		if err != nil {
			return fmt.Errorf("snapshot of the refold at %d: %w", rec.Seq, err)
		}
		if got != h {
			t.Errorf("%sat log sequence %d %s's state differs from the refold", prefix, rec.Seq, samples.whoAt(rec.Seq))
		}
		checked++
		return nil
	})
	if err != nil {
		t.Fatalf("%srefold: %v", prefix, err)
	}
	if checked != len(want) {
		t.Errorf("%s%d sampled sequences, %d met by the refold", prefix, len(want), checked)
	}
	return removals
}

// appendNewerVersion appends a well-formed envelope of protocol version
// events.MaxVersion+1 to group's log and returns its sequence.
func appendNewerVersion(t *testing.T, ctx context.Context, js jetstream.JetStream, group string) uint64 {
	t.Helper()
	subj, _ := events.NewSubjects(group)
	body := events.MustEncode(events.MaxVersion+1, &events.ProtocolVersionSet{Version: events.MaxVersion + 1, By: "a-newer-build"})
	if _, _, err := events.Decode(body); !errors.Is(err, events.ErrNewerVersion) {
		t.Fatalf("the bump body %s decodes with %v, want ErrNewerVersion", body, err)
	}
	var ack *jetstream.PubAck
	waitFor(t, time.Minute, "the newer-version record to land", func() bool {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var err error
		ack, err = js.Publish(pctx, subj.Log(), body)
		return err == nil
	})
	return ack.Sequence
}

func streamLastSeq(t *testing.T, ctx context.Context, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	var last uint64
	waitFor(t, time.Minute, "stream info of "+stream, func() bool {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := js.Stream(ictx, stream)
		if err != nil {
			return false
		}
		info, err := st.Info(ictx)
		if err != nil {
			return false
		}
		last = info.State.LastSeq
		return true
	})
	return last
}

// logAfter returns the group's log records after seq.
func logAfter(t *testing.T, ctx context.Context, js jetstream.JetStream, group string, seq uint64) []events.Record {
	t.Helper()
	src, err := replay.NewStreamSource(ctx, js, group)
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Record
	err = src.Scan(ctx, replay.ScanOptions{LogOnly: true, SkipHeaders: true, From: seq + 1}, func(r *events.Record) error {
		c := *r
		c.Body = slices.Clone(r.Body)
		out = append(out, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// stateSampler keeps the hash of the first state sampled at each log
// sequence and reports a later sample that differs.
type stateSampler struct {
	mu  sync.Mutex
	at  map[uint64]string
	who map[uint64]string
	n   int
}

func (s *stateSampler) sample(who string, st *decider.State) error {
	_, h, err := decider.Snapshot(st)
	if err != nil {
		return nil // in the middle of a multi-part event: not comparable
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if prev, ok := s.at[st.LastSeq]; ok {
		if prev != h {
			return fmt.Errorf("at log sequence %d %s's state %s differs from %s's %s", st.LastSeq, who, h, s.who[st.LastSeq], prev)
		}
		return nil
	}
	s.at[st.LastSeq], s.who[st.LastSeq] = h, who
	return nil
}

func (s *stateSampler) copy() map[uint64]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[uint64]string, len(s.at))
	for k, v := range s.at {
		if k != 0 {
			out[k] = v
		}
	}
	return out
}

func (s *stateSampler) whoAt(seq uint64) string { s.mu.Lock(); defer s.mu.Unlock(); return s.who[seq] }
func (s *stateSampler) count() int              { s.mu.Lock(); defer s.mu.Unlock(); return s.n }
func (s *stateSampler) seqs() int               { s.mu.Lock(); defer s.mu.Unlock(); return len(s.at) }
