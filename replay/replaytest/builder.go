// Package replaytest builds group histories for tests and benchmarks: a
// Builder drives the decider's own commands (claims, declarations, window
// closes, decisions with their releases, heartbeats, verdicts and removals,
// restarts, leaves, operator actions) and hands every message to an Emitter
// — a Recorder that keeps records in memory with deterministic sequences
// and server times, or a live stream. Generate drives a Builder through a
// large random history.
//
// The Builder folds what it emits with decider.Apply, exactly as a member
// would, so the histories it makes are the ones real members write: every
// decision is computed with decider.Decide on the log it is fenced on, every
// release gives up the token the fold assigned.
package replaytest

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// Emitter stores one message and returns its stream sequence.
type Emitter interface {
	Emit(subject string, header map[string][]string, body []byte) (seq uint64, err error)
}

// HeaderExpectedLastSubjectSeq is the JetStream header that fences a
// publish on its subject's last sequence.
const HeaderExpectedLastSubjectSeq = "Nats-Expected-Last-Subject-Sequence"

// Recorder is an Emitter that keeps records in memory, with sequences from
// 1 and server times from Base, Step apart.
type Recorder struct {
	Records []events.Record
	// Sink, if set, receives each record instead of Records.
	Sink func(*events.Record) error

	now     time.Time
	step    time.Duration
	seq     uint64
	nextSeq *uint64
	n       int
}

// NewRecorder returns a Recorder whose first record is at base and each
// next one step later.
func NewRecorder(base time.Time, step time.Duration) *Recorder {
	return &Recorder{now: base.UTC(), step: step}
}

// Emit implements Emitter.
func (r *Recorder) Emit(subject string, header map[string][]string, body []byte) (uint64, error) {
	seq := r.seq + 1
	if r.nextSeq != nil {
		seq = *r.nextSeq
		r.nextSeq = nil
	} else {
		r.seq = seq
	}
	rec := events.NewRecord(seq, r.now, subject, header, body)
	r.now = r.now.Add(r.step)
	r.n++
	if r.Sink != nil {
		return seq, r.Sink(&rec)
	}
	r.Records = append(r.Records, rec)
	return seq, nil
}

// SkipTo makes the next record's sequence seq, when that is ahead: a stream
// that starts later, as a migrated group's new stream starts after its old
// one.
func (r *Recorder) SkipTo(seq uint64) {
	if seq > r.seq+1 {
		r.seq = seq - 1
	}
}

// Genesis appends the genesis of a new generation that starts from old's
// state (group from's fold), in parts of at most chunk bytes, as the first
// records of b's log, and folds them; b's log must be empty. Claims after it
// get nonces numbered from 10,000.
func (b *Builder) Genesis(from string, old *decider.State, chunk int) {
	if b.err != nil {
		return
	}
	if b.State.LastSeq != 0 {
		b.fail(fmt.Errorf("replaytest: a genesis on a log that is not empty"))
		return
	}
	gen, err := decider.NewGenesis(old, from, "PARTI_"+from, chunk, "replaytest", "")
	if err != nil {
		b.fail(err)
		return
	}
	for i, g := range gen {
		_, out := b.Log(g, i == 0)
		b.must("genesis", out)
	}
	for _, m := range b.State.Members {
		b.nonces[m.ID] = m.Nonce
	}
	// The carried members' nonces came from another Builder's count:
	// number the claims from here on apart from them.
	b.claims = max(b.claims, 10000)
}

// Count returns the number of records emitted.
func (r *Recorder) Count() int { return r.n }

// Advance moves the clock of the next record by d (negative: backwards,
// as a server clock may step).
func (r *Recorder) Advance(d time.Duration) { r.now = r.now.Add(d) }

// ForceSeq gives the next record the sequence seq, whatever it should be:
// a hand-made history can then break the stream's order. The sequences
// after it continue where they were.
func (r *Recorder) ForceSeq(seq uint64) { r.nextSeq = &seq }

// Builder writes a group's history through an Emitter and folds it.
type Builder struct {
	Subjects events.Subjects
	// State is the fold of everything emitted on the log so far.
	State *decider.State

	em      Emitter
	hbSeq   map[string]uint64 // last sequence per heartbeat subject
	nonces  map[string]string // member ID → the nonce of its last claim
	claims  int
	err     error
	Version uint16
}

// NewBuilder returns a Builder of group's history.
func NewBuilder(group string, em Emitter) (*Builder, error) {
	subj, err := events.NewSubjects(group)
	if err != nil {
		return nil, err
	}
	return &Builder{Subjects: subj, State: decider.New(), em: em, hbSeq: map[string]uint64{}, nonces: map[string]string{}, Version: events.MaxVersion}, nil
}

// Err returns the first error met; every method does nothing after one.
func (b *Builder) Err() error { return b.err }

func (b *Builder) fail(err error) {
	if b.err == nil && err != nil {
		b.err = err
	}
}

func fence(seq uint64) map[string][]string {
	return map[string][]string{HeaderExpectedLastSubjectSeq: {strconv.FormatUint(seq, 10)}}
}

// Log emits ev on the log (fenced on the log's last sequence if fenced)
// and folds it; it returns the record's sequence and the fold's outcome.
func (b *Builder) Log(ev events.Event, fenced bool) (uint64, decider.Outcome) {
	if b.err != nil {
		return 0, decider.Outcome{}
	}
	var h map[string][]string
	if fenced {
		h = fence(b.State.LastSeq)
	}
	return b.LogRaw(h, events.MustEncode(b.Version, ev))
}

// LogRaw emits body on the log as is and folds it.
func (b *Builder) LogRaw(header map[string][]string, body []byte) (uint64, decider.Outcome) {
	if b.err != nil {
		return 0, decider.Outcome{}
	}
	seq, err := b.em.Emit(b.Subjects.Log(), header, body)
	if err != nil {
		b.fail(err)
		return 0, decider.Outcome{}
	}
	out := decider.Apply(b.State, events.NewRecord(seq, time.Time{}, b.Subjects.Log(), header, body))
	return seq, out
}

// Raw emits body on subject without folding it.
func (b *Builder) Raw(subject string, header map[string][]string, body []byte) uint64 {
	if b.err != nil {
		return 0
	}
	seq, err := b.em.Emit(subject, header, body)
	b.fail(err)
	return seq
}

func (b *Builder) must(what string, out decider.Outcome) {
	if b.err == nil && out.Kind != decider.Applied && out.Kind != decider.Partial {
		b.fail(fmt.Errorf("replaytest: %s at seq %d: %s (%s)", what, b.State.LastSeq, out.Kind, out.Reason))
	}
}

// Claim claims id ("" for the lowest free worker slot) with a new nonce.
func (b *Builder) Claim(id string) {
	b.claims++
	nonce := fmt.Sprintf("n%04d-%s", b.claims, id)
	c, err := decider.Claim(id, nonce, 0)
	if err != nil {
		b.fail(err)
		return
	}
	_, out := b.Log(c, false)
	b.must("claim "+id, out)
	if m := b.State.GrantedTo(nonce); m != nil {
		b.nonces[m.ID] = nonce
	}
}

// Member returns the current incarnation of id, or fails.
func (b *Builder) Member(id string) *decider.Member {
	m := b.State.Members[id]
	if m == nil {
		b.fail(fmt.Errorf("replaytest: %s is not a member", id))
	}
	return m
}

func (b *Builder) leader() *decider.Member {
	l, ok := b.State.Leader()
	if !ok {
		b.fail(fmt.Errorf("replaytest: no leader"))
		return &decider.Member{}
	}
	return l
}

// Heartbeat appends a heartbeat of id's current incarnation, fenced on its
// subject's previous message, with a TTL header.
func (b *Builder) Heartbeat(id string) {
	m := b.Member(id)
	if b.err != nil {
		return
	}
	subj := b.Subjects.Heartbeat(m.ID, m.Incarnation)
	h := fence(b.hbSeq[subj])
	h["Nats-TTL"] = []string{"5m"}
	seq := b.Raw(subj, h, events.MustEncode(b.Version, &events.Heartbeat{Nonce: m.Nonce, Applied: b.State.LastSeq}))
	b.hbSeq[subj] = seq
}

// Heartbeats appends a heartbeat of every live member, in join order.
func (b *Builder) Heartbeats() {
	for _, m := range b.State.LiveMembers() {
		b.Heartbeat(m.ID)
	}
}

// PartitionIDs returns n partition IDs: p-00, p-01, ... (width grows with n).
func PartitionIDs(n int) []string {
	w := len(strconv.Itoa(max(n-1, 0)))
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("p-%0*d", max(w, 2), i)
	}
	return ids
}

// Declare has the leader declare ids with strategy, in parts of at most
// perPart IDs (0: the decider's default).
func (b *Builder) Declare(ids []string, strategy string, perPart int) {
	l := b.leader()
	if b.err != nil {
		return
	}
	parts, err := decider.Declare(b.State, l.ID, l.Incarnation, ids, nil, strategy, perPart)
	if err != nil {
		b.fail(err)
		return
	}
	for i, p := range parts {
		_, out := b.Log(p, i == 0)
		b.must("declaration", out)
	}
}

// CloseWindow has the leader close the open window, if any.
func (b *Builder) CloseWindow(spanMillis int64) {
	if b.err != nil || !b.State.Window {
		return
	}
	l := b.leader()
	w, err := decider.CloseWindow(b.State, l.ID, l.Incarnation, spanMillis)
	if err != nil {
		b.fail(err)
		return
	}
	_, out := b.Log(w, true)
	b.must("window close", out)
}

// Compute returns the leader's next decision on the current log, or nil.
func (b *Builder) Compute() *events.AssignmentDecided {
	l := b.leader()
	if b.err != nil {
		return nil
	}
	d, err := decider.Decide(b.State, l.ID, l.Incarnation)
	b.fail(err)
	return d
}

// EmitDecision appends d (split into parts of at most 2,000 ranges) fenced
// on the current log, and returns the last part's outcome: a decision
// computed on an older log is rejected.
func (b *Builder) EmitDecision(d *events.AssignmentDecided) decider.Outcome {
	var out decider.Outcome
	for i, p := range decider.SplitDecision(d, 2000) {
		_, out = b.Log(p, i == 0)
	}
	return out
}

// Decide computes and appends the leader's decision, then every source's
// release of what it was asked to move (one release per source, in the
// decision's order of sources, with the tokens the fold gave them). It
// returns the decision (nil: nothing to decide).
func (b *Builder) Decide() *events.AssignmentDecided {
	d := b.Compute()
	if d == nil || b.err != nil {
		return nil
	}
	b.must("decision", b.EmitDecision(d))
	// Built from the moves, not with decider.Release: that scans every
	// partition, once per source.
	type src struct {
		id  string
		inc uint64
	}
	var order []src
	rels := map[src]*events.PartitionsReleased{}
	for _, mv := range d.Moves {
		if mv.From == "" {
			continue
		}
		k := src{mv.From, mv.FromInc}
		rel := rels[k]
		if rel == nil {
			rel = &events.PartitionsReleased{Member: mv.From, Incarnation: mv.FromInc}
			rels[k] = rel
			order = append(order, k)
		}
		mv.Parts.Each(func(p uint32) bool {
			rel.Released = append(rel.Released, events.Released{Partition: p, Token: b.State.Owners[p].Token})
			return true
		})
	}
	for _, k := range order {
		rel := rels[k]
		slices.SortFunc(rel.Released, func(x, y events.Released) int { return int(x.Partition) - int(y.Partition) })
		_, out := b.Log(rel, false)
		b.must("release by "+k.id, out)
	}
	return d
}

// Release appends id's release of every partition it is asked to move.
func (b *Builder) Release(id string) {
	m := b.Member(id)
	if b.err != nil {
		return
	}
	if rel := decider.Release(b.State, m.ID, m.Incarnation, false); rel != nil {
		_, out := b.Log(rel, false)
		b.must("release by "+id, out)
	}
}

// StaleRelease appends a release by id of its first partition with a wrong
// token: the fold ignores it.
func (b *Builder) StaleRelease(id string) {
	m := b.Member(id)
	if b.err != nil {
		return
	}
	owned := b.State.Owned(m.ID, m.Incarnation)
	if len(owned) == 0 {
		b.fail(fmt.Errorf("replaytest: %s owns nothing", id))
		return
	}
	p := owned[0]
	rel := &events.PartitionsReleased{Member: m.ID, Incarnation: m.Incarnation,
		Released: []events.Released{{Partition: p, Token: b.State.Owners[p].Token + 1000}}}
	b.Log(rel, false)
}

// JudgeOf returns the member that judges id (the next in the ring).
func (b *Builder) JudgeOf(id string) *decider.Member {
	for _, m := range b.State.Members {
		if v, ok := b.State.Victim(m.ID, m.Incarnation); ok && v.ID == id {
			return m
		}
	}
	b.fail(fmt.Errorf("replaytest: nobody judges %s", id))
	return &decider.Member{}
}

// Crash expires id: its judge appends a verdict on id's heartbeat subject
// (fenced on the last heartbeat it saw), and the removal follows on the log.
// spanMillis is what the judge measured.
func (b *Builder) Crash(id string, spanMillis int64) {
	m := b.Member(id)
	j := b.JudgeOf(id)
	if b.err != nil {
		return
	}
	subj := b.Subjects.Heartbeat(m.ID, m.Incarnation)
	last := b.hbSeq[subj]
	v := &events.ExpiryVerdict{Member: m.ID, Incarnation: m.Incarnation, Judge: j.ID, JudgeInc: j.Incarnation, LastSeen: last, SpanMillis: spanMillis}
	vseq := b.Raw(subj, fence(last), events.MustEncode(b.Version, v))
	b.hbSeq[subj] = vseq
	rm, err := decider.Remove(b.State, v, vseq)
	if err != nil {
		b.fail(err)
		return
	}
	_, out := b.Log(rm, false)
	b.must("removal of "+id, out)
}

// Leave appends id's graceful leave.
func (b *Builder) Leave(id string) {
	m := b.Member(id)
	if b.err != nil {
		return
	}
	_, out := b.Log(&events.MemberLeft{Member: m.ID, Incarnation: m.Incarnation}, false)
	b.must("leave of "+id, out)
}

// CloseForRestart appends id's close for a restart.
func (b *Builder) CloseForRestart(id string) {
	m := b.Member(id)
	if b.err != nil {
		return
	}
	_, out := b.Log(&events.MemberClosing{Member: m.ID, Incarnation: m.Incarnation}, false)
	b.must("close of "+id, out)
}

// EndGrace has the leader end id's restart grace.
func (b *Builder) EndGrace(id string, spanMillis int64) {
	m := b.Member(id)
	l := b.leader()
	if b.err != nil {
		return
	}
	g, err := decider.EndGrace(b.State, l.ID, l.Incarnation, m.ID, m.Incarnation, spanMillis)
	if err != nil {
		b.fail(err)
		return
	}
	_, out := b.Log(g, true)
	b.must("grace end of "+id, out)
}

// Operator appends an operator action.
func (b *Builder) Operator(a events.OperatorAction) {
	if b.err != nil {
		return
	}
	op, err := decider.Operator(b.State, a)
	if err != nil {
		b.fail(err)
		return
	}
	_, out := b.Log(op, false)
	b.must("operator "+a.Action, out)
}

// SetProtocol has the leader set the group's protocol version.
func (b *Builder) SetProtocol(v uint16) {
	l := b.leader()
	if b.err != nil {
		return
	}
	e, err := decider.SetProtocol(b.State, l.ID, l.Incarnation, v)
	if err != nil {
		b.fail(err)
		return
	}
	_, out := b.Log(e, true)
	b.must("protocol version", out)
}
