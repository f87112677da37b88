package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
)

type partState int

const (
	partLoading  partState = iota // assigned; its floor is being read and claimed
	partActive                    // consumed
	partRevoking                  // assignment context ended; draining, then let go
)

// part is one tenure of one owned partition: from Assigned until its final
// floor is written and it is let go.
//
// Positions are sequences of the user's stream. Every message of the
// partition at or below floor was processed (by this member or an earlier
// owner); every message at or below covered was delivered to this tenure
// (or processed before it), so a delivery at or below covered is a repeat.
type part struct {
	e       *engine
	id      string
	subject string
	a       parti.Assignment
	ctx     context.Context // handlers' context: ends with the assignment
	cancel  context.CancelFunc
	chunk   int // the progress chunk its entries go to (named in its floor record)
	unwatch func() bool
	loaded  chan struct{} // closed once the floor is read and claimed (or given up)

	cmu sync.Mutex // serialises floor writes

	// Guarded by e.mu.
	state        partState
	loadStarted  bool
	activeAt     time.Time // when its floor was loaded
	src          *source   // the consumer delivering it; nil while it needs one
	covered      uint64
	overflow     bool        // the queue was full: deliveries after covered were dropped
	queue        []*delivery // held, in stream order
	busy         *delivery   // being handled or unsettled
	idle         chan struct{}
	blockedUntil time.Time // back-off after a failure
	retry        *time.Timer
	attempts     map[uint64]int // failed attempts per stream sequence
	waitingSlot  bool
	running      bool   // a goroutine handles its messages (runPart)
	next         *Msg   // started while running: runPart takes it
	floor        uint64 // confirmed floor
	rev          uint64 // sequence of the floor record last written or read (the fence of the next write)
	dirty        bool   // processed something since the last floor write
	listed       bool   // on e.dirtyList
	touched      bool   // on e.touched
	held         bool   // on e.held: waits for the floor loads to end
	noted        uint64 // floor last written in the member's progress record
	lastWrite    time.Time
	superseded   bool // a newer owner wrote the floor: stop acting on it
	released     chan struct{}
}

// delivery is one delivered message held for a partition.
type delivery struct {
	p    *part
	jm   jetstream.Msg
	seq  uint64
	meta *jetstream.MsgMetadata
	done bool // settled as processed; the floor moves past it
}

// engine runs one member's consumption: the partition table, the member's
// consumers on the user's stream, the floors, the handlers. The control
// goroutine (run) starts and stops consumers; message callbacks and handler
// goroutines share the table under mu.
type engine struct {
	cfg      Config
	group    string
	js       jetstream.JetStream
	nc       *nats.Conn
	floors   jetstream.Stream
	origin   uint64 // floor of a partition that never had one
	tmpl     template
	dlq      string
	log      *slog.Logger
	met      Metrics
	cnt      counters
	ready    chan struct{} // closed once member is set
	member   *parti.Member
	kick     chan struct{}
	stopReq  chan struct{} // closed by requestStop
	stopOnce sync.Once
	done     chan struct{}
	srcSeq   atomic.Uint64
	loadSem  chan struct{} // bounds the floor loads at once

	fencedCh chan struct{} // closed when fenced

	progSubj   string     // this Join's first progress subject (progress.go)
	progMu     sync.Mutex // serialises progress writes; guards progRevs
	progRevs   []uint64   // per progress chunk, the sequence of its last record written
	progTTL    bool       // the floor stream allows per-message TTLs
	progBudget int        // bytes of entries one progress record may hold
	progCache  progressCache

	mu         sync.Mutex
	name       string // the member's ID
	parts      map[string]*part
	sources    map[*source]struct{}
	loading    int       // floor loads started and not finished
	loadDoneAt time.Time // when a floor load last finished (or the first started)
	running    int
	slotQueue  []*part
	leaving    []*part   // tenures replaced before they were revoked
	chunkUse   []int     // per progress chunk, the entry bytes its partitions may need
	dirtyList  []*part   // the parts marked dirty since the committer dropped them (markDirty)
	touched    []*part   // the parts whose state changed since the last reconcile (touch)
	lookBuf    []*part   // reconcile's other list (the control goroutine's own)
	held       []*part   // loaded partitions waiting for the other loads (reconcile)
	fenced     bool      // drain timed out: act no more
	closing    bool      // Close/Leave/Stop/fatal: no new partitions
	leaseAt    time.Time // when Owns last found the lease valid (leaseValid)
	leaseWall  int64     // leaseAt's wall clock, unix nanos
	crashed    bool      // Stop: write nothing more, as a crash would
	err        error
}

func newEngine(js jetstream.JetStream, group string, cfg Config, tmpl template) *engine {
	return &engine{
		cfg: cfg, group: group, js: js, nc: js.Conn(), tmpl: tmpl,
		dlq:   cfg.deadLetterTemplate(group),
		log:   cfg.Logger.With("group", group, "stream", cfg.Stream),
		met:   cfg.Metrics,
		ready: make(chan struct{}), kick: make(chan struct{}, 1),
		stopReq: make(chan struct{}), done: make(chan struct{}), fencedCh: make(chan struct{}),
		loadSem: make(chan struct{}, parallelOps),
		parts:   map[string]*part{}, sources: map[*source]struct{}{},
		progSubj: newProgressSubject(cfg.FloorStream),
	}
}

func (e *engine) subjectOf(partition string) string {
	if e.cfg.SubjectFunc != nil {
		return e.cfg.SubjectFunc(partition)
	}
	return e.tmpl.subject(partition)
}

func (e *engine) partitionOf(subject string) string {
	if e.cfg.PartitionOf != nil {
		return e.cfg.PartitionOf(subject)
	}
	return e.tmpl.partitionOf(subject)
}

func (e *engine) deadLetterSubject(partition string) string {
	return strings.ReplaceAll(e.dlq, Placeholder, subjectSafe(partition))
}

// subjectSafe maps a partition ID to one subject token.
func subjectSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

func (e *engine) requestStop() { e.stopOnce.Do(func() { close(e.stopReq) }) }

func (e *engine) kickRun() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

func (e *engine) errorf(op string, err error, msg string, args ...any) {
	e.cnt.errors.Add(1)
	e.met.Error(op, err)
	e.log.Warn(msg, append(args, "op", op, "err", err)...)
}

// --- assignment changes (from the member's dispatch goroutine) ---

func (e *engine) assign(a parti.Assignment) {
	subject := e.subjectOf(a.Partition)
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return
	}
	if old := e.parts[a.Partition]; old != nil {
		// The member revokes before it assigns again, so an old tenure
		// still here was never revoked: let it go with the next change.
		e.log.Error("partition assigned while its previous tenure is not over", "partition", a.Partition)
		old.cancel()
		e.leaving = append(e.leaving, old)
	}
	ctx, cancel := context.WithCancel(a.Context)
	p := &part{
		e: e, id: a.Partition, subject: subject, a: a, ctx: ctx, cancel: cancel,
		attempts: map[uint64]int{}, released: make(chan struct{}), loaded: make(chan struct{}),
	}
	p.unwatch = context.AfterFunc(a.Context, func() { e.touchKick(p) })
	p.chunk = e.reserveChunk(p.id)
	e.parts[a.Partition] = p
	e.touch(p)
	e.mu.Unlock()
	e.kickRun()
}

// revoke returns once the tenure of a is over: its handlers returned, its
// floor is written past everything it processed, and no consumer of the
// member delivers it any more (or the member stopped, so that no release
// can follow).
func (e *engine) revoke(a parti.Assignment) {
	e.mu.Lock()
	p := e.parts[a.Partition]
	if p == nil || p.a.Token != a.Token {
		p = nil
		for _, o := range e.leaving {
			if o.id == a.Partition && o.a.Token == a.Token {
				p = o
			}
		}
		if p == nil {
			e.mu.Unlock()
			return
		}
	}
	p.cancel()
	e.touch(p)
	e.mu.Unlock()
	e.kickRun()
	select {
	case <-p.released:
	case <-e.done:
	}
}

// --- messages (from a consumer's delivery goroutine) ---

func (e *engine) onMsg(src *source, jm jetstream.Msg) {
	meta, err := jm.Metadata()
	if err != nil {
		return
	}
	seq := meta.Sequence.Stream
	id := e.partitionOf(jm.Subject())
	e.mu.Lock()
	defer e.mu.Unlock()
	if src.stopped || src.gap {
		return
	}
	if meta.Sequence.Consumer != src.dseq+1 {
		src.gap = true
		// A delivery went missing (the server dropped it for a slow
		// client, or the consumer was recreated behind our back): start
		// over from where each partition got.
		go e.replace(src, "gap")
		return
	}
	src.dseq = meta.Sequence.Consumer
	if seq > src.pos {
		src.pos = seq
	}
	src.lastMsg = time.Now()
	src.atTail = meta.NumPending == 0
	p := e.parts[id]
	if p == nil || p.src != src || p.state != partActive || p.subject != jm.Subject() || seq <= p.covered || p.overflow {
		return
	}
	if len(p.queue) >= e.cfg.PartitionBuffer {
		// Hold no more: the partition reads the rest again once drained.
		p.overflow = true
		e.kickRun()
		return
	}
	p.covered = seq
	p.queue = append(p.queue, &delivery{p: p, jm: jm, seq: seq, meta: meta})
	e.pump(p)
}

// coveredOf returns p's covered position, counting its consumer's progress
// over the stream (the consumer delivered every message of p up to its
// position, unless p overflowed). e.mu held.
func coveredOf(p *part) uint64 {
	if p.src != nil && !p.overflow {
		return max(p.covered, p.src.pos)
	}
	return p.covered
}

// floorCandidate returns the floor p may write now: everything before its
// first message not processed yet. e.mu held.
func floorCandidate(p *part) uint64 {
	var f uint64
	switch {
	case p.busy != nil && !p.busy.done:
		f = p.busy.seq - 1
	case len(p.queue) > 0:
		f = p.queue[0].seq - 1
	default:
		f = coveredOf(p)
	}
	return max(f, p.floor)
}

// pump starts the partition's next message if it may run. e.mu held.
func (e *engine) pump(p *part) {
	if e.fenced || p.state != partActive || p.superseded || p.busy != nil || len(p.queue) == 0 {
		return
	}
	if p.ctx.Err() != nil || !e.leaseValid(p) {
		// The assignment ended, or the member's lease lapsed before the
		// member got round to revoking it: start nothing.
		return
	}
	if wait := time.Until(p.blockedUntil); wait > 0 {
		e.armRetry(p, wait)
		return
	}
	if e.running >= e.cfg.MaxInFlight {
		if !p.waitingSlot {
			p.waitingSlot = true
			e.slotQueue = append(e.slotQueue, p)
		}
		return
	}
	head := p.queue[0]
	p.queue[0] = nil
	p.queue = p.queue[1:]
	p.busy = head
	e.running++
	e.met.InFlight(e.running)
	try := &attempt{d: head, start: time.Now()}
	m := &Msg{
		Partition: p.id, Token: p.a.Token, Subject: head.jm.Subject(), Header: head.jm.Headers(),
		Data: head.jm.Data(), Seq: head.seq,
		Attempt: p.attempts[head.seq] + 1, Time: head.meta.Timestamp, try: try,
	}
	if p.running {
		p.next = m // the partition's goroutine takes it once it settled the last
		return
	}
	p.running = true
	go e.runPart(p, m)
}

// ownsReuse is how long a valid lease, read through Member.Owns, is taken
// as still valid without reading the clock again. Owns reads the clock the
// lease is kept on (CLOCK_BOOTTIME, a system call: no vDSO), and pump asks
// once per message under e.mu, on the consumer's delivery goroutine: at
// 57 k msg/s it was 60 % of the engine's per-message time (profile of a
// drain). Reused for at most a millisecond, a message starts at most a
// millisecond after the lease lapsed, as one started a millisecond before
// would still run. A suspend is no loophole: the wall clock jumps by it
// and the reuse needs both clocks to have moved less than ownsReuse.
const ownsReuse = time.Millisecond

// leaseValid reports whether the member may act on p: its tenure is
// current (p.ctx, cancelled with the assignment) and its lease valid.
// e.mu held.
func (e *engine) leaseValid(p *part) bool {
	if e.member == nil {
		return true
	}
	now := time.Now()
	if leaseReusable(e.leaseAt, e.leaseWall, now) {
		return true
	}
	if !e.member.Owns(p.id, p.a.Token) {
		e.leaseAt = time.Time{}
		return false
	}
	// Valid when Owns read the clock, which is after now.
	e.leaseAt, e.leaseWall = now, now.UnixNano()
	return true
}

// leaseReusable reports whether a lease found valid at at (wall: at's wall
// clock in unix nanos, read apart from at's monotonic reading) may be taken
// as still valid at now: both clocks moved forward by less than ownsReuse.
// The monotonic clock stands still through a suspend, the wall clock jumps
// by it; a wall clock set back fails too.
func leaseReusable(at time.Time, wall int64, now time.Time) bool {
	if at.IsZero() {
		return false
	}
	mono, w := now.Sub(at), now.UnixNano()-wall
	return mono >= 0 && mono < ownsReuse && w >= 0 && w < int64(ownsReuse)
}

// runPart handles p's messages one after another, from m, for as long as
// the next one is ready when the last is settled (one goroutine per burst,
// not per message).
func (e *engine) runPart(p *part, m *Msg) {
	for m != nil {
		err := e.call(m)
		if !e.cfg.ManualAck || err != nil {
			_ = e.settle(m.try, err)
		}
		e.mu.Lock()
		m, p.next = p.next, nil
		if m == nil {
			p.running = false
		}
		e.mu.Unlock()
	}
}

func (e *engine) pumpSlots() {
	for e.running < e.cfg.MaxInFlight && len(e.slotQueue) > 0 {
		p := e.slotQueue[0]
		e.slotQueue[0] = nil
		e.slotQueue = e.slotQueue[1:]
		p.waitingSlot = false
		e.pump(p)
	}
}

// release frees the in-flight slot of p's busy message. e.mu held.
func (e *engine) release(p *part) {
	p.busy = nil
	e.running--
	e.met.InFlight(e.running)
	if p.overflow && len(p.queue) <= e.cfg.PartitionBuffer/2 {
		e.touch(p)
		e.kickRun() // drained enough: read the rest again
	}
	if p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
}

func (e *engine) call(m *Msg) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e.cnt.panics.Add(1)
			err = fmt.Errorf("%w: %v", ErrPanic, r)
			e.log.Error("handler panicked", "partition", m.Partition, "seq", m.Seq, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	return e.cfg.Handler(m.try.d.p.ctx, m)
}

// settle finishes one attempt: processed, retried later, or dead-lettered.
func (e *engine) settle(t *attempt, herr error) error {
	if !t.settled.CompareAndSwap(false, true) {
		return ErrSettled
	}
	d := t.d
	p := d.p
	took := time.Since(t.start)
	if herr == nil && !e.cfg.ConfirmEach {
		// The floor follows in the background: one step under the lock.
		e.mu.Lock()
		if p.busy == d {
			d.done = true
			e.markDirty(p)
			delete(p.attempts, d.seq)
			e.release(p)
		}
		e.pump(p)
		e.pumpSlots()
		e.mu.Unlock()
		e.cnt.processed.Add(1)
		e.met.Processed(p.id, took)
		return nil
	}
	if herr == nil {
		err := e.processed(d)
		if err == nil {
			e.cnt.processed.Add(1)
			e.met.Processed(p.id, took)
		}
		e.finish(d)
		return err
	}
	reason := "error"
	switch {
	case errors.Is(herr, ErrPanic):
		reason = "panic"
	case errors.Is(herr, ErrPermanent):
		reason = "permanent"
	}
	e.cnt.failed.Add(1)
	e.met.Failed(p.id, reason)
	e.mu.Lock()
	p.attempts[d.seq]++
	n := p.attempts[d.seq]
	e.mu.Unlock()
	if reason == "permanent" || (e.cfg.MaxDeliveries > 0 && n >= e.cfg.MaxDeliveries) {
		err := e.deadLetter(d, herr, n)
		if err == nil {
			e.cnt.dead.Add(1)
			e.met.DeadLettered(p.id)
			e.log.Warn("message dead-lettered", "partition", p.id, "seq", d.seq, "attempts", n, "reason", herr.Error())
			_ = e.processed(d)
			e.finish(d)
			return nil
		}
		if errors.Is(err, ErrSettled) {
			e.finish(d)
			return nil
		}
		e.errorf("dead-letter", err, "dead-lettering failed; the message blocks its partition", "partition", p.id, "seq", d.seq)
	} else {
		e.log.Warn("handler failed; retrying after a back-off", "partition", p.id, "seq", d.seq, "attempt", n, "reason", reason, "err", herr)
	}
	e.retryLater(d, e.backoff(n))
	return nil
}

// processed marks d processed and, with ConfirmEach, writes the partition's
// floor past it before the partition's next message may start.
func (e *engine) processed(d *delivery) error {
	p := d.p
	e.mu.Lock()
	if p.busy != d {
		e.mu.Unlock()
		return ErrSettled
	}
	d.done = true
	e.markDirty(p)
	delete(p.attempts, d.seq)
	e.mu.Unlock()
	if !e.cfg.ConfirmEach {
		return nil
	}
	return e.commit(p.ctx, p)
}

func (e *engine) backoff(n int) time.Duration {
	b := e.cfg.Backoff
	if n-1 < len(b) {
		return b[max(n-1, 0)]
	}
	return b[len(b)-1]
}

// finish ends the busy message of d's partition.
func (e *engine) finish(d *delivery) {
	e.mu.Lock()
	p := d.p
	if p.busy == d {
		e.release(p)
	}
	e.pump(p)
	e.pumpSlots()
	e.mu.Unlock()
}

func (e *engine) retryLater(d *delivery, wait time.Duration) {
	e.mu.Lock()
	p := d.p
	if p.busy == d {
		e.release(p)
		p.queue = append([]*delivery{d}, p.queue...)
	}
	p.blockedUntil = time.Now().Add(wait)
	e.armRetry(p, wait)
	e.pumpSlots()
	e.mu.Unlock()
}

// armRetry pumps p once its back-off is over. e.mu held.
func (e *engine) armRetry(p *part, wait time.Duration) {
	if p.retry != nil {
		p.retry.Stop()
	}
	p.retry = time.AfterFunc(wait, func() {
		e.mu.Lock()
		e.pump(p)
		e.pumpSlots()
		e.mu.Unlock()
	})
}

func (e *engine) deadLetter(d *delivery, reason error, attempts int) error {
	e.mu.Lock()
	stale := e.fenced || e.crashed || d.p.superseded
	e.mu.Unlock()
	if stale {
		return ErrSettled
	}
	msg := nats.NewMsg(e.deadLetterSubject(d.p.id))
	msg.Data = d.jm.Data()
	for k, v := range d.jm.Headers() {
		if len(k) >= 5 && k[:5] == "Nats-" {
			continue
		}
		msg.Header[k] = append([]string(nil), v...)
	}
	why := reason.Error()
	if len(why) > 1024 {
		why = why[:1024]
	}
	msg.Header.Set("Parti-Reason", why)
	msg.Header.Set("Parti-Group", e.group)
	msg.Header.Set("Parti-Partition", d.p.id)
	msg.Header.Set("Parti-Stream", e.cfg.Stream)
	msg.Header.Set("Parti-Stream-Seq", strconv.FormatUint(d.seq, 10))
	msg.Header.Set("Parti-Subject", d.jm.Subject())
	msg.Header.Set("Parti-Attempts", strconv.Itoa(attempts))
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.OpTimeout)
	defer cancel()
	_, err := e.js.PublishMsg(ctx, msg, jetstream.WithMsgID(fmt.Sprintf("parti-dlq:%s:%d", e.cfg.Stream, d.seq)))
	if permissionErr(e.nc, err) {
		e.fatal(wrapPermission(e.nc, "dead-letter", err))
	}
	return err
}

func (e *engine) fatal(err error) {
	e.mu.Lock()
	first := e.err == nil
	if first {
		e.err = err
		e.closing = true
	}
	e.mu.Unlock()
	if !first {
		return
	}
	if errors.Is(err, ErrPermission) {
		e.cnt.errors.Add(1)
		e.met.Error("permission", err)
	}
	e.log.Error("consumer helper stopping", "err", err)
	// Hand the partitions to members that can consume them.
	go func() {
		<-e.ready
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.DrainTimeout+10*e.cfg.OpTimeout)
		defer cancel()
		if err := e.member.Leave(ctx); err != nil {
			e.member.Stop()
		}
	}()
}

func (e *engine) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

func (e *engine) stats() Stats {
	e.mu.Lock()
	inflight, n := e.running, 0
	for _, p := range e.parts {
		if p.state == partActive {
			n++
		}
	}
	e.mu.Unlock()
	return Stats{
		Processed: e.cnt.processed.Load(), Failed: e.cnt.failed.Load(), Panics: e.cnt.panics.Load(),
		DeadLettered: e.cnt.dead.Load(), Reconfigs: e.cnt.reconfigs.Load(), Errors: e.cnt.errors.Load(),
		FloorWrites: e.cnt.floorWrites.Load(), Checks: e.cnt.checks.Load(), InFlight: inflight, Partitions: n,
	}
}
