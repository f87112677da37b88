package projection

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// harness appends events to a group's log and folds the same records into a
// local state: the reference every projection is compared with.
type harness struct {
	t     *testing.T
	ctx   context.Context
	app   *Appender
	local *decider.State
	hbSeq map[string]uint64
	// records counts the records appended to the log.
	records int
}

func newHarness(t *testing.T, app *Appender) *harness {
	return &harness{t: t, ctx: testCtx(t), app: app, local: decider.New(), hbSeq: map[string]uint64{}}
}

func (h *harness) applyLocal(seq uint64, body []byte) {
	h.t.Helper()
	h.records++
	decider.Apply(h.local, events.NewRecord(seq, time.Time{}, h.app.Subjects().Log(), nil, body))
	if err := decider.CheckInvariants(h.local); err != nil {
		h.t.Fatalf("local fold at %d: %v", seq, err)
	}
}

// append appends ev unfenced.
func (h *harness) append(ev events.Event) uint64 {
	h.t.Helper()
	seq, err := h.app.Append(h.ctx, ev)
	if err != nil {
		h.t.Fatal(err)
	}
	h.applyLocal(seq, events.MustEncode(h.app.Version(), ev))
	return seq
}

// fenced appends ev fenced on the local fold's last sequence.
func (h *harness) fenced(ev events.Event) uint64 {
	h.t.Helper()
	seq, err := h.app.AppendFenced(h.ctx, ev, h.local.LastSeq)
	if err != nil {
		h.t.Fatal(err)
	}
	h.applyLocal(seq, events.MustEncode(h.app.Version(), ev))
	return seq
}

// batch appends evs as one atomic batch fenced on the local fold.
func (h *harness) batch(evs []events.Event) uint64 {
	h.t.Helper()
	last, err := h.app.AppendBatch(h.ctx, evs, h.local.LastSeq)
	if err != nil {
		h.t.Fatal(err)
	}
	first := last - uint64(len(evs)) + 1
	for i, ev := range evs {
		h.applyLocal(first+uint64(i), events.MustEncode(h.app.Version(), ev))
	}
	return last
}

// raw publishes body on the log subject as is.
func (h *harness) raw(body []byte) uint64 {
	h.t.Helper()
	ack, err := h.app.js.Publish(h.ctx, h.app.Subjects().Log(), body)
	if err != nil {
		h.t.Fatal(err)
	}
	h.applyLocal(ack.Sequence, body)
	return ack.Sequence
}

// heartbeat appends a heartbeat of (member, 1): stream traffic that is not
// on the log.
func (h *harness) heartbeat(member string) {
	h.t.Helper()
	subj := h.app.Subjects().Heartbeat(member, 1)
	seq, err := h.app.Heartbeat(h.ctx, subj, &events.Heartbeat{Nonce: member, Applied: h.local.LastSeq}, h.hbSeq[subj], time.Minute)
	if err != nil {
		h.t.Fatal(err)
	}
	h.hbSeq[subj] = seq
}

// leader returns the local fold's leader.
func (h *harness) leader() (string, uint64) {
	h.t.Helper()
	l, ok := h.local.Leader()
	if !ok {
		h.t.Fatal("no leader")
	}
	return l.ID, l.Incarnation
}

// declare declares n partitions, split into parts of perPart IDs (one
// atomic batch when there are several).
func (h *harness) declare(n, perPart int) {
	h.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("p-%03d", i)
	}
	id, inc := h.leader()
	parts, err := decider.Declare(h.local, id, inc, ids, nil, "", perPart)
	if err != nil {
		h.t.Fatal(err)
	}
	evs := make([]events.Event, len(parts))
	for i, p := range parts {
		evs[i] = p
	}
	h.batch(evs)
}

// closeWindow closes the open window, fenced.
func (h *harness) closeWindow() {
	h.t.Helper()
	id, inc := h.leader()
	ev, err := decider.CloseWindow(h.local, id, inc, 100)
	if err != nil {
		h.t.Fatal(err)
	}
	h.fenced(ev)
}

// decide appends the leader's next decision, split into parts of maxRanges
// ranges (one atomic batch when there are several). It reports whether
// there was anything to decide.
func (h *harness) decide(maxRanges int) bool {
	h.t.Helper()
	id, inc := h.leader()
	d, err := decider.Decide(h.local, id, inc)
	if err != nil {
		h.t.Fatal(err)
	}
	if d == nil {
		return false
	}
	parts := decider.SplitDecision(d, maxRanges)
	evs := make([]events.Event, len(parts))
	for i, p := range parts {
		evs[i] = p
	}
	h.batch(evs)
	return true
}

// releaseAll appends every release the local fold asks for.
func (h *harness) releaseAll() {
	h.t.Helper()
	for _, m := range h.local.LiveMembers() {
		if rel := decider.Release(h.local, m.ID, m.Incarnation, false); rel != nil {
			h.append(rel)
		}
	}
}

// scenario builds a small group: two claims, a declaration in parts, a
// cold-start decision in parts, a third member, a rebalance and its
// releases, with heartbeats in between.
func (h *harness) scenario() {
	h.t.Helper()
	h.append(claim("", "nonce-0"))
	h.heartbeat("worker-0")
	h.append(claim("", "nonce-1"))
	h.declare(50, 20)
	h.heartbeat("worker-1")
	h.closeWindow()
	if !h.decide(2) {
		h.t.Fatal("no cold-start decision")
	}
	h.heartbeat("worker-0")
	h.append(claim("", "nonce-2"))
	h.closeWindow()
	if !h.decide(100) {
		h.t.Fatal("no rebalance")
	}
	h.releaseAll()
	h.heartbeat("worker-2")
}

var stateOpts = cmp.Options{cmpopts.IgnoreUnexported(decider.State{}, decider.Member{}), cmpopts.EquateEmpty()}

// sameState fails the test if got differs from want.
func sameState(t *testing.T, what string, want, got *decider.State) {
	t.Helper()
	if diff := cmp.Diff(want, got, stateOpts); diff != "" {
		t.Fatalf("%s: state differs from the local fold (-want +got):\n%s", what, diff)
	}
}

// startProjection starts a projection stopped at cleanup.
func startProjection(t *testing.T, h *harness, cfg Config) *Projection {
	t.Helper()
	if cfg.Group == "" {
		cfg.Group = h.app.Subjects().Group
	}
	p, err := Start(testCtx(t), h.app.js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// caughtUp waits until p has folded what the local fold has.
func caughtUp(t *testing.T, p *Projection, h *harness) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WaitFor(ctx, h.local.LastSeq); err != nil {
		t.Fatalf("waiting for %d (at %d): %v", h.local.LastSeq, p.LastApplied(), err)
	}
}

// recorder is an OnRecord hook that remembers every sequence it saw.
type recorder struct {
	mu   sync.Mutex
	seqs []uint64
	outs []decider.Outcome
}

func (r *recorder) hook(rec events.Record, out decider.Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seqs = append(r.seqs, rec.Seq)
	r.outs = append(r.outs, out)
}

func (r *recorder) seen() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.seqs...)
}

// logRecords is a slog handler that keeps every record.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

// warnedSeqs returns the "seq" attribute of every warning logged.
func (l *logRecords) warnedSeqs() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []uint64
	for _, r := range l.recs {
		if r.Level != slog.LevelWarn {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "seq" {
				out = append(out, a.Value.Uint64())
			}
			return true
		})
	}
	return out
}
