package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
)

type partState int

const (
	partPending  partState = iota // assigned; the member's consumer does not cover it yet
	partActive                    // covered and consumed
	partRevoking                  // assignment context ended; waiting to be let go
)

// part is one tenure of one owned partition: from Assigned until the
// member's consumer no longer covers it.
type part struct {
	e       *engine
	sh      *shard
	id      string
	subject string
	a       parti.Assignment
	ctx     context.Context // handlers' context: ends with the assignment
	cancel  context.CancelFunc
	unwatch func() bool
	state   partState

	// Guarded by e.mu.
	queue        []*delivery         // held, sorted by work-queue sequence
	deferred     map[uint64]struct{} // handed back for overflow, to come again
	busy         *delivery           // being handled or unsettled
	blockedUntil time.Time           // back-off after a failure
	retry        *time.Timer
	attempts     map[uint64]int // failed attempts per work-queue sequence
	waitingSlot  bool
	released     chan struct{} // closed when the tenure is over
}

// delivery is one delivered work-queue message held for a partition.
type delivery struct {
	p       *part
	jm      jetstream.Msg
	epoch   uint64 // the shard's consumer start that delivered it
	gen     uint64 // the shard's consumer that delivered it (acknowledgements count while it lives)
	seq     uint64
	meta    *jetstream.MsgMetadata
	touched time.Time // last delivery or progress acknowledgement
}

// shard is one of the member's consumers on the work queue: the owned
// partitions whose index falls in it. A change of ownership rebuilds only
// the shards it touches, and pauses only their partitions.
type shard struct {
	idx  int
	name string // consumer name: <member ID>_<idx>

	// Guarded by e.mu.
	epoch      uint64 // bumped when consuming stops for a change: older deliveries are ignored
	gen        uint64 // bumped when the consumer is deleted: older acknowledgements do not count
	cc         jetstream.ConsumeContext
	current    []string // filter subjects of the live consumer (sorted)
	haveCons   bool     // the consumer covers current and is consumed
	exists     bool     // the consumer exists on the server (perhaps parked)
	force      []string // reasons that force a rebuild
	quiescing  bool
	running    int // handlers of its partitions running or unsettled
	idle       chan struct{}
	lastAsync  jetstream.Msg
	asyncDirty bool
}

// engine runs one member's consumption: the partition table, the member's
// consumers on the work queue, the handlers. The control goroutine (run)
// changes the consumers; message callbacks and handler goroutines share the
// table under mu.
type engine struct {
	cfg      Config
	group    string
	js       jetstream.JetStream
	nc       *nats.Conn
	wq       jetstream.Stream
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

	fencedCh chan struct{} // closed when fenced

	mu        sync.Mutex
	name      string // the member's ID
	nshards   int    // fixed at the first assignment
	shards    map[int]*shard
	parts     map[string]*part
	running   int
	slotQueue []*part
	leaving   []*part // tenures replaced before they were revoked
	fenced    bool
	closing   bool // Close/Leave/Stop/fatal: no new partitions
	keepCons  bool // Stop: leave the consumers for the next owners to clean up
	err       error
}

func newEngine(js jetstream.JetStream, group string, cfg Config, tmpl template) *engine {
	return &engine{
		cfg: cfg, group: group, js: js, nc: js.Conn(), tmpl: tmpl,
		dlq:   cfg.deadLetterTemplate(group),
		log:   cfg.Logger.With("group", group, "stream", cfg.Stream),
		met:   cfg.Metrics,
		ready: make(chan struct{}), kick: make(chan struct{}, 1),
		stopReq: make(chan struct{}), done: make(chan struct{}), fencedCh: make(chan struct{}),
		parts: map[string]*part{}, shards: map[int]*shard{},
	}
}

// shardOf returns the shard of the partition with index i. e.mu held; the
// member must be set.
func (e *engine) shardOf(i uint32) *shard {
	if e.nshards == 0 {
		n := len(e.member.State().Partitions)
		e.nshards = max(1, (n+e.cfg.FiltersPerConsumer-1)/e.cfg.FiltersPerConsumer)
	}
	k := int(i % uint32(e.nshards))
	sh := e.shards[k]
	if sh == nil {
		sh = &shard{idx: k, name: e.name + "_" + strconv.Itoa(k)}
		e.shards[k] = sh
	}
	return sh
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

// markForce asks the control goroutine to rebuild a shard's consumer.
func (e *engine) markForce(sh *shard, reason string) {
	e.mu.Lock()
	sh.force = append(sh.force, reason)
	e.mu.Unlock()
	e.kickRun()
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
		old.state = partRevoking
		e.leaving = append(e.leaving, old)
	}
	ctx, cancel := context.WithCancel(a.Context)
	p := &part{
		e: e, id: a.Partition, subject: subject, a: a, ctx: ctx, cancel: cancel,
		deferred: map[uint64]struct{}{}, attempts: map[uint64]int{}, released: make(chan struct{}),
	}
	p.unwatch = context.AfterFunc(a.Context, e.kickRun)
	e.parts[a.Partition] = p
	e.mu.Unlock()
	e.kickRun()
}

// revoke returns once the tenure of a is over: its handlers returned, their
// acknowledgements are confirmed, and the member's consumer no longer
// covers the partition (or the member stopped, so no release can follow).
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
	e.mu.Unlock()
	e.kickRun()
	select {
	case <-p.released:
	case <-e.done:
	}
}

// --- messages (from the consumer's delivery goroutine) ---

func (e *engine) onMsg(sh *shard, epoch uint64, jm jetstream.Msg) {
	meta, err := jm.Metadata()
	if err != nil {
		return
	}
	id := e.partitionOf(jm.Subject())
	now := time.Now()
	var naks []jetstream.Msg
	e.mu.Lock()
	if epoch != sh.epoch || e.fenced {
		e.mu.Unlock()
		return // a consumer being replaced: everything held is delivered again
	}
	p := e.parts[id]
	if p == nil || p.sh != sh || p.state != partActive || p.subject != jm.Subject() {
		e.mu.Unlock()
		// Not a partition this consumer should cover: hand it back.
		_ = jm.NakWithDelay(time.Second)
		return
	}
	seq := meta.Sequence.Stream
	if p.busy != nil && p.busy.seq == seq {
		p.busy.touched = now
		e.mu.Unlock()
		return // a redelivery of the message being handled
	}
	d := &delivery{p: p, jm: jm, epoch: epoch, gen: sh.gen, seq: seq, meta: meta, touched: now}
	i, found := slices.BinarySearchFunc(p.queue, seq, func(x *delivery, s uint64) int { return cmpU64(x.seq, s) })
	if found {
		p.queue[i] = d
	} else {
		p.queue = slices.Insert(p.queue, i, d)
	}
	delete(p.deferred, seq)
	for len(p.queue) > e.cfg.PartitionBuffer {
		last := p.queue[len(p.queue)-1]
		p.queue[len(p.queue)-1] = nil
		p.queue = p.queue[:len(p.queue)-1]
		p.deferred[last.seq] = struct{}{}
		naks = append(naks, last.jm)
	}
	e.pump(p)
	e.mu.Unlock()
	for _, m := range naks {
		if err := m.NakWithDelay(time.Second); err != nil {
			e.errorf("nak", err, "handing back a message failed", "partition", id)
		}
	}
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// pump starts the partition's next message if it may run. e.mu held.
func (e *engine) pump(p *part) {
	if p.sh.quiescing || e.fenced || p.state != partActive || p.busy != nil || len(p.queue) == 0 {
		return
	}
	if wait := time.Until(p.blockedUntil); wait > 0 {
		e.armRetry(p, wait)
		return
	}
	head := p.queue[0]
	for s := range p.deferred {
		if s < head.seq {
			return // an earlier message was handed back: wait for it
		}
	}
	if e.running >= e.cfg.MaxInFlight {
		if !p.waitingSlot {
			p.waitingSlot = true
			e.slotQueue = append(e.slotQueue, p)
		}
		return
	}
	p.queue[0] = nil
	p.queue = p.queue[1:]
	p.busy = head
	e.running++
	p.sh.running++
	e.met.InFlight(e.running)
	try := &attempt{d: head, start: time.Now()}
	m := &Msg{
		Partition: p.id, Token: p.a.Token, Subject: head.jm.Subject(), Header: head.jm.Headers(),
		Data: head.jm.Data(), StreamSeq: sourceSeq(head.jm.Headers()), Seq: head.seq,
		Attempt: p.attempts[head.seq] + 1, Time: head.meta.Timestamp, try: try,
	}
	go e.process(m)
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
	sh := p.sh
	sh.running--
	e.met.InFlight(e.running)
	if sh.running == 0 && sh.idle != nil {
		close(sh.idle)
		sh.idle = nil
	}
}

func (e *engine) process(m *Msg) {
	err := e.call(m)
	if e.cfg.ManualAck && err == nil {
		return // the handler settles it
	}
	_ = e.settle(m.try, err)
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

// settle finishes one attempt: acknowledge, retry later, or dead-letter.
func (e *engine) settle(t *attempt, herr error) error {
	if !t.settled.CompareAndSwap(false, true) {
		return ErrSettled
	}
	d := t.d
	p := d.p
	took := time.Since(t.start)
	if herr == nil {
		if err := e.ack(d); err != nil {
			e.finish(d, false)
			return err
		}
		e.cnt.processed.Add(1)
		e.met.Processed(p.id, took)
		e.finish(d, true)
		return nil
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
			err = e.ack(d)
		}
		if err == nil {
			e.cnt.dead.Add(1)
			e.met.DeadLettered(p.id)
			e.log.Warn("message dead-lettered", "partition", p.id, "seq", d.seq, "attempts", n, "reason", herr.Error())
			e.finish(d, true)
			return nil
		}
		if errors.Is(err, ErrSettled) {
			e.finish(d, false)
			return nil
		}
		e.errorf("dead-letter", err, "dead-lettering failed; the message blocks its partition", "partition", p.id, "seq", d.seq)
	} else {
		e.log.Warn("handler failed; retrying after a back-off", "partition", p.id, "seq", d.seq, "attempt", n, "reason", reason, "err", herr)
	}
	e.retryLater(d, e.backoff(n))
	return nil
}

func (e *engine) backoff(n int) time.Duration {
	b := e.cfg.Backoff
	if n-1 < len(b) {
		return b[max(n-1, 0)]
	}
	return b[len(b)-1]
}

// finish ends the busy message of d's partition; done says it left the
// queue for good (acknowledged).
func (e *engine) finish(d *delivery, done bool) {
	e.mu.Lock()
	p := d.p
	if p.busy == d {
		e.release(p)
	}
	if done {
		delete(p.attempts, d.seq)
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
	}
	if p.state == partActive && d.epoch == p.sh.epoch && !e.fenced {
		p.queue = slices.Insert(p.queue, 0, d)
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

// ack acknowledges d, confirmed by the server unless AsyncAck. It refuses
// once the member's consumer moved on or the engine is fenced: the
// acknowledgement would not count.
func (e *engine) ack(d *delivery) error {
	e.mu.Lock()
	stale := e.fenced || d.gen != d.p.sh.gen
	e.mu.Unlock()
	if stale {
		return ErrSettled
	}
	if e.cfg.AsyncAck {
		if err := d.jm.Ack(); err != nil {
			e.errorf("ack", err, "acknowledgement failed", "partition", d.p.id, "seq", d.seq)
			return err
		}
		e.mu.Lock()
		d.p.sh.lastAsync, d.p.sh.asyncDirty = d.jm, true
		e.mu.Unlock()
		return nil
	}
	return e.confirmAck(d.jm, d.p.id)
}

// confirmAck sends +ACK as a request: the server replies once it processed
// it (and, on a replicated consumer, once it is replicated). Acknowledging
// twice is harmless, so timeouts are retried.
func (e *engine) confirmAck(jm jetstream.Msg, partition string) error {
	var err error
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.OpTimeout)
		_, err = e.nc.RequestWithContext(ctx, jm.Reply(), []byte("+ACK"))
		cancel()
		if err == nil {
			return nil
		}
		if permissionErr(e.nc, err) {
			e.fatal(wrapPermission(e.nc, "ack", err))
			return err
		}
		if errors.Is(err, nats.ErrConnectionClosed) {
			break
		}
		e.log.Debug("acknowledgement not confirmed; retrying", "partition", partition, "try", i+1, "err", err)
	}
	e.errorf("ack", err, "acknowledgement not confirmed; the message will be delivered again", "partition", partition)
	return err
}

func (e *engine) deadLetter(d *delivery, reason error, attempts int) error {
	e.mu.Lock()
	stale := e.fenced || d.gen != d.p.sh.gen
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
	msg.Header.Set("Parti-Stream-Seq", strconv.FormatUint(sourceSeq(d.jm.Headers()), 10))
	msg.Header.Set("Parti-Subject", d.jm.Subject())
	msg.Header.Set("Parti-Attempts", strconv.Itoa(attempts))
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.OpTimeout)
	defer cancel()
	_, err := e.js.PublishMsg(ctx, msg, jetstream.WithMsgID(fmt.Sprintf("parti-dlq:%s:%d", e.cfg.WorkQueue, d.seq)))
	if permissionErr(e.nc, err) {
		e.fatal(wrapPermission(e.nc, "dead-letter", err))
	}
	return err
}

// keepAlive sends progress acknowledgements for messages held or handled
// longer than a third of the ack wait, so that the server does not deliver
// them again behind the partition's back.
func (e *engine) keepAlive() {
	limit := e.cfg.AckWait / 3
	now := time.Now()
	var msgs []jetstream.Msg
	e.mu.Lock()
	for _, p := range e.parts {
		if p.busy != nil && p.busy.gen == p.sh.gen && now.Sub(p.busy.touched) >= limit {
			p.busy.touched = now
			msgs = append(msgs, p.busy.jm)
		}
		for _, d := range p.queue {
			if d.epoch == p.sh.epoch && now.Sub(d.touched) >= limit {
				d.touched = now
				msgs = append(msgs, d.jm)
			}
		}
	}
	e.mu.Unlock()
	for _, m := range msgs {
		if err := m.InProgress(); err != nil {
			e.errorf("progress", err, "progress acknowledgement failed")
			return
		}
	}
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
		InFlight: inflight, Partitions: n,
	}
}
