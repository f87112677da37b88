package projection

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// ErrStopped is returned by WaitFor when the projection ended before
// reaching the sequence. If it ended on its own, the error also wraps Err().
var ErrStopped = errors.New("parti: projection: stopped")

// Config configures a Projection. The zero value of every field but Group
// is a usable default.
type Config struct {
	// Group is the group's ID. Required. The group's stream must exist
	// (Provision).
	Group string
	// Logger receives what the projection does not hand to its caller:
	// garbage skipped, reconnects, refolds. Nil discards.
	Logger *slog.Logger
	// SkipSnapshot makes Start fold from sequence 1 instead of starting
	// from the newest snapshot.
	SkipSnapshot bool
	// OnRecord, if set, is called on the fold goroutine after each log
	// record was folded, with what Apply did. No lock is held: the hook may
	// call View, State and the other getters, which then show the state
	// exactly as of this record. It must not block for long (the fold
	// waits for it) and must not call Stop. It is not called for the
	// records a refold folds again (readers do not see that state until it
	// has caught up; see Projection).
	OnRecord func(events.Record, decider.Outcome)

	// refoldRecord, if set (by tests), is called on the fold goroutine
	// after each record a refold folded, before the swap.
	refoldRecord func(*Projection)
}

// Stats counts what a projection did. Applied, Skipped, Ignored and Rejected
// come from the state's counters (decider.Counters), so they describe the
// fold of the log (and survive snapshots); the others describe this process.
type Stats struct {
	// Applied, Skipped, Ignored and Rejected are the state's counters.
	Applied, Skipped, Ignored, Rejected uint64
	// Garbage counts undecodable records this projection met (they are also
	// in Skipped); each is logged with its sequence.
	Garbage uint64
	// Reconnects counts consumer sessions that ended (a lost connection, a
	// consumer error) and were resumed from LastApplied+1.
	Reconnects uint64
	// Refolds counts the times the log was found to have gone backwards and
	// the state was rebuilt from sequence 1.
	Refolds uint64
	// Refolding is true while a refold runs: the state readers see is the
	// one from before it, which the refolded state replaces once it has
	// caught up.
	Refolding bool
	// Stalls counts the times CheckTail found the tail stuck (the log held
	// records the fold did not apply, and it applied none between two
	// checks) and rebuilt the session.
	Stalls uint64
	// Directs counts the records folded one by one, by message gets, while
	// the tail was stuck and no session delivered.
	Directs uint64
	// Lag is the number of log records the server had not yet delivered
	// when the last folded record was delivered (its NumPending).
	Lag uint64
	// LastApplied is the sequence of the last folded log record.
	LastApplied uint64
}

// Projection folds a group's log subject into a decider.State, live: it
// starts from the newest snapshot (or from sequence 1), tails the log subject
// with an ordered consumer and applies every record with decider.Apply on one
// goroutine. Only the log subject is read: heartbeats and snapshots never
// enter the state.
//
// A session that ends — a lost connection, a consumer error — is resumed
// from LastApplied+1: no record is skipped or folded twice. Whenever a
// session starts, the projection checks that the log did not go backwards
// (a single-server file store can lose acknowledged writes in a host crash,
// DESIGN rule 9): if the log subject now ends below LastApplied, or the
// record at LastApplied is not the one folded, it logs it, counts a refold
// and folds again from sequence 1 into a fresh state beside the current one:
// readers (State, View, LastApplied, WaitFor) keep seeing the current state
// until the fresh one has caught up with the log as it was when the refold
// began, and then see the fresh one at once. A member folding a log whose
// last records were lost thus never sees a state without itself in the
// middle of a refold.
//
// A session can also get stuck without ending (a consumer whose deliveries
// stop on a healthy connection): CheckTail, called at intervals, notices it
// and starts a new session.
//
// All methods are safe for concurrent use.
type Projection struct {
	js       jetstream.JetStream
	nc       *nats.Conn
	stream   jetstream.Stream
	subjects events.Subjects
	log      *slog.Logger
	onRecord func(events.Record, decider.Outcome)
	onRefold func(*Projection)

	mu    sync.RWMutex
	state *decider.State

	lastApplied atomic.Uint64
	garbage     atomic.Uint64
	reconnects  atomic.Uint64
	refolds     atomic.Uint64
	lag         atomic.Uint64
	stalls      atomic.Uint64
	directs     atomic.Uint64 // records folded by directCatchUp
	cursor      atomic.Uint64 // the fold's position: LastApplied, or the refold's during one
	refolding   atomic.Bool

	tmu        sync.Mutex // guards the last CheckTail's reading
	tailNewest uint64
	tailCursor uint64
	tailGen    uint64
	tailSeen   bool
	sessGen    atomic.Uint64  // sessions started so far (CheckTail: a new one is not stuck)
	deletes    sync.WaitGroup // consumer deletions in flight (run waits for them)

	rebuild chan struct{} // CheckTail asks the fold goroutine for a new session

	cmu     sync.Mutex
	changed chan struct{} // closed and replaced after each batch
	subs    map[chan struct{}]struct{}

	// Owned by the fold goroutine (and by Start before it runs).
	last     lastRecord
	re       *refold // non-nil while a refold runs
	statusCh chan nats.Status
	sess     *session
	sessions uint64

	cancel context.CancelFunc // ends the fold goroutine's context
	done   chan struct{}
	err    error // set before done is closed
}

// lastRecord identifies the last folded record, to recognise it on the
// stream after a reconnect.
type lastRecord struct {
	ok   bool
	seq  uint64
	time time.Time
	body []byte
}

// refold is a fold from sequence 1 into a fresh state, beside the state
// readers see, until it catches up.
type refold struct {
	state   *decider.State
	applied uint64
	last    lastRecord
	lag     uint64
	target  uint64 // the log subject's last sequence when the refold began
}

// Start starts a projection of cfg.Group's log. It loads the newest snapshot
// (unless cfg.SkipSnapshot; any problem with it — missing chunks, a hash or
// invariant mismatch — is logged and the fold starts from sequence 1), checks
// the log against it, creates the ordered consumer and returns; the fold then
// runs on its own goroutine. Use WaitFor(ctx, Newest) to wait until it has
// caught up.
//
// ctx bounds the start and the projection's life: cancelling it stops the
// projection as Stop does.
func Start(ctx context.Context, js jetstream.JetStream, cfg Config) (*Projection, error) {
	subjects, err := events.NewSubjects(cfg.Group)
	if err != nil {
		return nil, fmt.Errorf("parti: projection: Config.Group: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("group", cfg.Group)
	st, err := js.Stream(ctx, StreamName(cfg.Group))
	if err != nil {
		return nil, fmt.Errorf("parti: projection: stream %s: %w", StreamName(cfg.Group), err)
	}
	p := &Projection{
		js:       js,
		nc:       js.Conn(),
		stream:   st,
		subjects: subjects,
		log:      log,
		onRecord: cfg.OnRecord,
		onRefold: cfg.refoldRecord,
		state:    decider.New(),
		changed:  make(chan struct{}),
		subs:     map[chan struct{}]struct{}{},
		done:     make(chan struct{}),
		rebuild:  make(chan struct{}, 1),
	}
	if !cfg.SkipSnapshot {
		s, err := loadSnapshot(ctx, st, subjects)
		switch {
		case errors.Is(err, errNoSnapshot):
			log.Debug("parti: projection: no snapshot; folding from sequence 1")
		case err != nil:
			log.Warn("parti: projection: snapshot unusable; folding from sequence 1", "err", err)
		default:
			p.state = s
			p.lastApplied.Store(s.LastSeq)
			p.cursor.Store(s.LastSeq)
			log.Info("parti: projection: started from a snapshot", "up_to", s.LastSeq)
		}
	}
	p.statusCh = p.nc.StatusChanged(nats.CONNECTED, nats.RECONNECTING, nats.CLOSED)
	if err := p.connect(ctx); err != nil {
		p.nc.RemoveStatusListener(p.statusCh)
		return nil, err
	}
	if r := p.re; r != nil {
		// Nobody reads the state yet: fold from 1 into it directly.
		p.re = nil
		p.state, p.last = r.state, lastRecord{}
		p.lastApplied.Store(0)
		p.refolding.Store(false)
	}
	ctx, p.cancel = context.WithCancel(ctx)
	go p.run(ctx)
	return p, nil
}

// Subjects returns the group's subject map.
func (p *Projection) Subjects() events.Subjects { return p.subjects }

// State returns a deep copy of the state as folded so far.
func (p *Projection) State() *decider.State {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.state.Clone()
}

// View calls fn with the state under the projection's read lock, without
// copying it. fn must not retain or modify the state (or anything in it), and
// must return quickly: the fold waits for it.
func (p *Projection) View(fn func(*decider.State)) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	fn(p.state)
}

// LastApplied returns the sequence of the last log record folded into the
// state readers see (0 before the first). It can go down only when a refold
// ends.
func (p *Projection) LastApplied() uint64 { return p.lastApplied.Load() }

// WaitFor returns nil once LastApplied is at least seq, ctx's error if ctx
// ends first, or an error wrapping ErrStopped if the projection ends first.
func (p *Projection) WaitFor(ctx context.Context, seq uint64) error {
	for {
		if p.lastApplied.Load() >= seq {
			return nil
		}
		p.cmu.Lock()
		ch := p.changed
		p.cmu.Unlock()
		if p.lastApplied.Load() >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			if p.lastApplied.Load() >= seq {
				return nil
			}
			if p.err != nil {
				return fmt.Errorf("%w at %d waiting for %d: %w", ErrStopped, p.lastApplied.Load(), seq, p.err)
			}
			return fmt.Errorf("%w at %d waiting for %d", ErrStopped, p.lastApplied.Load(), seq)
		}
	}
}

// Notify returns a channel that receives a signal after each batch of
// folded records (and after a refold), and a function that unsubscribes.
// Signals coalesce: the channel holds at most one, so a slow reader sees one
// signal for many batches and reads the state itself. The channel is never
// closed; watch Done for the end of the projection.
func (p *Projection) Notify() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	p.cmu.Lock()
	p.subs[ch] = struct{}{}
	p.cmu.Unlock()
	return ch, func() {
		p.cmu.Lock()
		delete(p.subs, ch)
		p.cmu.Unlock()
	}
}

// Stats returns the projection's counters.
func (p *Projection) Stats() Stats {
	p.mu.RLock()
	c := p.state.Counters
	p.mu.RUnlock()
	return Stats{
		Applied:     c.Applied,
		Skipped:     c.Skipped,
		Ignored:     c.Ignored,
		Rejected:    c.Rejected,
		Garbage:     p.garbage.Load(),
		Reconnects:  p.reconnects.Load(),
		Refolds:     p.refolds.Load(),
		Refolding:   p.refolding.Load(),
		Stalls:      p.stalls.Load(),
		Directs:     p.directs.Load(),
		Lag:         p.lag.Load(),
		LastApplied: p.lastApplied.Load(),
	}
}

// Newest returns the sequence of the last message on the log subject now (0
// for an empty log): the projection has caught up once LastApplied reaches
// it.
func (p *Projection) Newest(ctx context.Context) (uint64, error) {
	rec, found, err := lastOnSubject(ctx, p.stream, p.subjects.Log())
	if err != nil || !found {
		return 0, err
	}
	return rec.Seq, nil
}

// CheckTail reads the log subject's last sequence and returns it, and
// notices a stuck session: if the previous call found records the fold had
// not applied and the fold has applied none since, it logs it, counts a
// stall (Stats.Stalls), returns stalled true, and the fold goroutine
// replaces the session by a new one from the last folded record. Call it
// at intervals well above the latency of a delivery (a member calls it
// every heartbeat interval); an ordered consumer's own recovery notices
// only missing heartbeats, not a consumer that stopped delivering on a
// healthy connection.
func (p *Projection) CheckTail(ctx context.Context) (newest uint64, stalled bool, err error) {
	cur := p.cursor.Load() // before the read: newest is at least as new
	gen := p.sessGen.Load()
	newest, err = p.Newest(ctx)
	if err != nil {
		return 0, false, err
	}
	p.tmu.Lock()
	// Stuck: the same session (or none since) for a whole interval, with
	// records to fold and none folded. A session started since the last
	// reading gets an interval of its own: rebuilding it again while it is
	// still being set up would keep the tail from ever resuming.
	stalled = p.tailSeen && p.tailNewest > p.tailCursor && cur == p.tailCursor && gen == p.tailGen
	p.tailSeen, p.tailNewest, p.tailCursor, p.tailGen = true, newest, cur, gen
	p.tmu.Unlock()
	if stalled {
		p.stalls.Add(1)
		p.log.Warn("parti: projection: the tail applied nothing although the log holds newer records; starting a new session",
			"folded", cur, "newest", newest)
		select {
		case p.rebuild <- struct{}{}:
		default:
		}
	}
	return newest, stalled, nil
}

// Stop stops the projection and waits for its goroutine to end. It is
// idempotent. The state stays readable.
func (p *Projection) Stop() {
	p.cancel()
	<-p.done
}

// Done returns a channel closed when the projection has ended: after Stop,
// after the context given to Start ended, or on a failure reported by Err.
func (p *Projection) Done() <-chan struct{} { return p.done }

// Err returns why the projection ended on its own (the connection was
// closed), or nil while it runs and after a requested stop.
func (p *Projection) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// session is one ordered consumer tailing the log subject.
type session struct {
	id      uint64
	cons    jetstream.Consumer
	cc      jetstream.ConsumeContext
	msgs    chan delivered
	errs    chan error
	done    chan struct{}
	started time.Time
}

// sessionBuffer is how many delivered records wait for the fold.
const sessionBuffer = 1024

// consumerInactive is how long the server keeps an abandoned consumer.
const consumerInactive = time.Minute

// delivered is one delivery, decoded on the consumer's goroutine so that
// the fold goroutine only applies: during a catch-up, decoding the next
// records overlaps applying the last ones.
type delivered struct {
	rec     events.Record
	pending uint64 // the server's NumPending after it
	err     error  // the delivery's metadata could not be read
}

func (s *session) handle(m jetstream.Msg) {
	var d delivered
	meta, err := m.Metadata()
	if err != nil {
		d.err = fmt.Errorf("parti: projection: message metadata: %w", err)
	} else {
		var hdr map[string][]string
		if h := m.Headers(); len(h) > 0 {
			hdr = h
		}
		d.rec = events.NewRecord(meta.Sequence.Stream, meta.Timestamp, m.Subject(), hdr, m.Data())
		d.pending = meta.NumPending
	}
	select {
	case s.msgs <- d:
	case <-s.done:
	}
}

func (s *session) onErr(_ jetstream.ConsumeContext, err error) {
	select {
	case s.errs <- err:
	default:
	}
}

// connect checks the log against the folded state and starts a session from
// LastApplied+1. Each attempt is bounded by defaultTimeout: a request sent
// while the client has not yet noticed a lost connection waits in its
// reconnect buffer. Fold goroutine (or Start) only.
func (p *Projection) connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	lctx, lcancel := context.WithTimeout(ctx, directGetTimeout)
	defer lcancel()
	if err := p.checkLog(lctx); err != nil {
		return err
	}
	start := p.cursor.Load() + 1
	// Creating a consumer on a cluster needs the meta leader, which a
	// lost server may have been: a short bound keeps the fold goroutine
	// free for the direct catch-up (directCatchUp) while it is elected.
	cctx, ccancel := context.WithTimeout(ctx, consumerCreateTimeout)
	defer ccancel()
	cons, err := p.js.OrderedConsumer(cctx, StreamName(p.subjects.Group), jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{p.subjects.Log()},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		InactiveThreshold: consumerInactive,
	})
	if err != nil {
		return fmt.Errorf("parti: projection: consumer on %s from %d: %w", p.subjects.Log(), start, err)
	}
	p.sessions++
	s := &session{
		id:      p.sessions,
		cons:    cons,
		msgs:    make(chan delivered, sessionBuffer),
		errs:    make(chan error, 1),
		done:    make(chan struct{}),
		started: time.Now(),
	}
	// Large pull batches: a catch-up reads the log at stream speed.
	cc, err := cons.Consume(s.handle, jetstream.ConsumeErrHandler(s.onErr), jetstream.PullMaxMessages(2*sessionBuffer))
	if err != nil {
		p.deleteConsumer(cons)
		return fmt.Errorf("parti: projection: consume %s from %d: %w", p.subjects.Log(), start, err)
	}
	s.cc = cc
	p.sess = s
	p.sessGen.Add(1)
	p.log.Debug("parti: projection: tailing the log", "from", start, "session", s.id)
	return nil
}

// endSession stops the current session, if any.
func (p *Projection) endSession() {
	s := p.sess
	if s == nil {
		return
	}
	p.sess = nil
	close(s.done)
	s.cc.Stop()
	p.deleteConsumer(s.cons)
}

// deleteConsumer removes an abandoned consumer from the server, best effort;
// the server drops it by itself after consumerInactive anyway.
func (p *Projection) deleteConsumer(cons jetstream.Consumer) {
	// In the background: deleting needs the meta leader, and the fold
	// goroutine must not wait for one being elected.
	deleteInBackground(p.js, cons, &p.deletes)
}

// deleteInBackground deletes cons from the server, best effort, without
// waiting (the server drops it after consumerInactive anyway); wg, if not
// nil, counts the deletion in flight.
func deleteInBackground(js jetstream.JetStream, cons jetstream.Consumer, wg *sync.WaitGroup) {
	info := cons.CachedInfo()
	if info == nil || !js.Conn().IsConnected() {
		return
	}
	if wg != nil {
		wg.Add(1)
	}
	go func() {
		if wg != nil {
			defer wg.Done()
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = js.DeleteConsumer(ctx, info.Stream, info.Name)
	}()
}

// Bounds of the tail's recovery on a cluster.
const (
	consumerCreateTimeout = time.Second
	directGetTimeout      = time.Second
	maxDirectCatchUp      = 1024 // records per call: more is a session's job
)

// directCatchUp folds the log records after the fold's position, up to the
// newest sequence CheckTail read, one request each (a message get, which
// the stream's leader answers: no consumer, so no meta leader, is needed).
// It is the tail's fallback while no session delivers: after a server that
// led both the stream and the meta layer is lost, the stream answers again
// seconds before a consumer can be created, and a member whose fold stays
// behind for longer than the expiry stops heartbeating. Fold goroutine only.
func (p *Projection) directCatchUp(ctx context.Context) {
	p.tmu.Lock()
	target := p.tailNewest // the log's end at the last CheckTail
	p.tmu.Unlock()
	if p.cursor.Load() >= target || !p.nc.IsConnected() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, directGetTimeout)
	err := p.checkLog(cctx) // the log must not have gone backwards under the fold
	cancel()
	if err != nil {
		p.log.Debug("parti: projection: direct catch-up: checking the log failed", "err", err)
		return
	}
	folded := 0
	for ; folded < maxDirectCatchUp && len(p.statusCh) == 0; folded++ {
		cur := p.cursor.Load()
		if cur >= target {
			break
		}
		gctx, cancel := context.WithTimeout(ctx, directGetTimeout)
		m, err := p.stream.GetMsg(gctx, cur+1, jetstream.WithGetMsgSubject(p.subjects.Log()))
		cancel()
		if err != nil {
			p.log.Debug("parti: projection: direct catch-up: get failed", "after", cur, "err", err)
			break
		}
		rec := rawRecord(m)
		var pending uint64
		if target > rec.Seq {
			pending = 1 // at least one more: the member keeps learning
		}
		if err := p.fold(delivered{rec: rec, pending: pending}); err != nil {
			break
		}
	}
	if folded > 0 {
		p.directs.Add(uint64(folded))
		p.log.Info("parti: projection: folded records read one by one while no tail delivers",
			"records", folded, "last_applied", p.cursor.Load())
		p.broadcast()
	}
}

// checkLog makes sure the log did not go backwards under the fold (the
// state readers see, or the refold's during one): the log subject must end
// at or after the fold's position, and the record there must be the one
// folded (for a state restored from a snapshot: a record on the log
// subject). Otherwise it refolds from sequence 1.
func (p *Projection) checkLog(ctx context.Context) error {
	la := p.cursor.Load()
	if la == 0 {
		return nil
	}
	last := p.last
	if p.re != nil {
		last = p.re.last
	}
	logSubj := p.subjects.Log()
	newest, found, err := lastOnSubject(ctx, p.stream, logSubj)
	if err != nil {
		return err
	}
	if !found {
		newest.Seq = 0
	}
	if newest.Seq < la {
		p.startRefold(fmt.Sprintf("the log subject ends at %d, below the folded sequence %d", newest.Seq, la), newest.Seq)
		return nil
	}
	at := newest
	if newest.Seq != la {
		m, err := p.stream.GetMsg(ctx, la)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			p.startRefold(fmt.Sprintf("the folded record %d is gone from the stream", la), newest.Seq)
			return nil
		}
		if err != nil {
			return fmt.Errorf("parti: projection: read record %d: %w", la, err)
		}
		at = rawRecord(m)
	}
	switch {
	case at.Subject != logSubj:
		p.startRefold(fmt.Sprintf("the folded record %d is now on %s", la, at.Subject), newest.Seq)
	case last.ok && last.seq == la && (!at.Time.Equal(last.time) || !bytes.Equal(at.Body, last.body)):
		p.startRefold(fmt.Sprintf("the record at %d is not the one folded", la), newest.Seq)
	}
	return nil
}

// startRefold starts folding from sequence 1 into a fresh state beside the
// one readers see (the next session delivers from 1); the fresh state
// replaces it once it has folded target, the log subject's last sequence
// now, or sooner if the server has nothing more to deliver. A refold that
// starts during another one replaces it. Fold goroutine (or Start) only.
func (p *Projection) startRefold(reason string, target uint64) {
	p.log.Warn("parti: projection: the log went backwards; refolding from sequence 1 beside the current state",
		"reason", reason, "last_applied", p.lastApplied.Load(), "log_ends_at", target)
	p.refolds.Add(1)
	p.re = &refold{state: decider.New(), target: target}
	p.refolding.Store(true)
	p.cursor.Store(0)
	// The old state's lag counted records of a log that is gone: a member
	// would learn sequences that may not exist.
	p.lag.Store(0)
	if target == 0 {
		p.swap() // nothing to fold: the log subject is empty
	}
}

// swap makes the refold's state the one readers see. Fold goroutine only.
func (p *Projection) swap() {
	r := p.re
	p.re = nil
	p.mu.Lock()
	p.state = r.state
	p.mu.Unlock()
	p.lastApplied.Store(r.applied)
	p.lag.Store(r.lag)
	p.last = r.last
	p.refolding.Store(false)
	p.log.Info("parti: projection: refold caught up; its state replaces the old one", "last_applied", r.applied)
	p.broadcast()
}

// broadcast wakes WaitFor callers and signals Notify subscribers.
func (p *Projection) broadcast() {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	close(p.changed)
	p.changed = make(chan struct{})
	for ch := range p.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// maxFoldBatch bounds how many records are folded between notifications.
const maxFoldBatch = 512

// Backoff between attempts to resume a session.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// run is the fold goroutine.
func (p *Projection) run(ctx context.Context) {
	var (
		retry   = time.NewTimer(time.Hour)
		backoff = minBackoff
	)
	retry.Stop()
	defer func() {
		retry.Stop()
		p.endSession()
		p.nc.RemoveStatusListener(p.statusCh)
		p.deletes.Wait()
		close(p.done)
	}()
	schedule := func(d time.Duration) { retry.Reset(d) }
	// resume tries to start a session now, or schedules another try.
	resume := func() {
		if !p.nc.IsConnected() {
			schedule(backoff) // CONNECTED will come first, normally
			backoff = min(2*backoff, maxBackoff)
			return
		}
		if err := p.connect(ctx); err != nil {
			p.log.Warn("parti: projection: resuming failed; retrying", "err", err, "in", backoff)
			schedule(backoff)
			backoff = min(2*backoff, maxBackoff)
			return
		}
		retry.Stop()
	}
	// lost ends the current session after a disconnect or a consumer error.
	lost := func(why string, err error) {
		if p.sess == nil {
			return
		}
		if time.Since(p.sess.started) > 2*time.Second {
			backoff = minBackoff
		}
		p.endSession()
		p.reconnects.Add(1)
		p.log.Info("parti: projection: session ended; resuming from the last folded record",
			"why", why, "err", err, "last_applied", p.lastApplied.Load())
	}
	// onStatus handles a connection status change; false means stop.
	onStatus := func(st nats.Status) bool {
		switch st {
		case nats.RECONNECTING:
			lost("disconnected", nil)
		case nats.CONNECTED:
			lost("reconnected", nil)
			backoff = minBackoff
			resume()
		case nats.CLOSED:
			p.err = fmt.Errorf("parti: projection: %w", nats.ErrConnectionClosed)
			return false
		}
		return true
	}
	// drainStatus handles pending status changes before anything else.
	drainStatus := func() bool {
		for len(p.statusCh) > 0 {
			if !onStatus(<-p.statusCh) {
				return false
			}
		}
		return true
	}

	for {
		if !drainStatus() {
			return
		}
		var (
			msgs chan delivered
			errs chan error
		)
		if s := p.sess; s != nil {
			msgs, errs = s.msgs, s.errs
		}
		select {
		case <-ctx.Done():
			return
		case st, ok := <-p.statusCh:
			if !ok {
				p.err = fmt.Errorf("parti: projection: %w", nats.ErrConnectionClosed)
				return
			}
			if !onStatus(st) {
				return
			}
		case err := <-errs:
			if errors.Is(err, jetstream.ErrConnectionClosed) {
				continue // CLOSED follows
			}
			lost("consumer error", err)
			if errors.Is(err, jetstream.ErrServerShutdown) {
				// The connection drops next: resume on CONNECTED
				// rather than send requests into a dying one.
				schedule(maxBackoff)
				continue
			}
			schedule(backoff)
			backoff = min(2*backoff, maxBackoff)
		case <-retry.C:
			if p.sess == nil {
				resume()
			}
		case <-p.rebuild:
			// The tail is stuck: what it missed is read directly; a stuck
			// session is replaced, and with none the resume waiting for its
			// backoff (up to maxBackoff after a consumer's server shut
			// down, which on a cluster need not be the connection's
			// server, so no reconnect comes to hurry it) is tried now.
			if !drainStatus() {
				return
			}
			if p.sess != nil {
				p.endSession()
			}
			p.directCatchUp(ctx)
			resume()
		case m := <-msgs:
			s := p.sess
			if !drainStatus() {
				return
			}
			if p.sess != s {
				continue // the session ended: m belongs to it
			}
			if err := p.foldBatch(m, s); err != nil {
				lost("bad delivery", err)
				resume()
			}
			p.broadcast()
		}
	}
}

// foldBatch folds m and whatever else the session has ready, up to
// maxFoldBatch records, stopping early when a status change is pending.
func (p *Projection) foldBatch(m delivered, s *session) error {
	if err := p.fold(m); err != nil {
		return err
	}
	for range maxFoldBatch - 1 {
		if len(p.statusCh) > 0 {
			return nil
		}
		select {
		case m := <-s.msgs:
			if err := p.fold(m); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// fold applies one delivered message. Fold goroutine only.
func (p *Projection) fold(d delivered) error {
	if d.err != nil {
		return d.err
	}
	rec := d.rec
	seq := rec.Seq
	if seq <= p.cursor.Load() {
		return nil // already folded: never apply twice
	}
	if rec.Subject != p.subjects.Log() {
		p.log.Error("parti: projection: delivery from outside the log subject ignored", "seq", seq, "subject", rec.Subject)
		return nil
	}
	if r := p.re; r != nil {
		// Nobody reads r.state before the swap: no lock. The log is not
		// the one folded before: garbage is logged and counted again.
		decider.Apply(r.state, rec)
		p.noteBad(rec)
		r.applied, r.lag = seq, d.pending
		r.last = lastRecord{ok: true, seq: seq, time: rec.Time, body: rec.Body}
		p.cursor.Store(seq)
		if p.onRefold != nil {
			p.onRefold(p)
		}
		if seq >= r.target || d.pending == 0 {
			p.swap()
		}
		return nil
	}
	p.mu.Lock()
	out := decider.Apply(p.state, rec)
	p.mu.Unlock()
	p.lastApplied.Store(seq)
	p.cursor.Store(seq)
	p.lag.Store(d.pending)
	p.last = lastRecord{ok: true, seq: seq, time: rec.Time, body: rec.Body}
	p.noteBad(rec)
	if p.onRecord != nil {
		p.onRecord(rec, out)
	}
	return nil
}

// noteBad logs a record the fold skipped as garbage (and counts it) or as
// being of a newer protocol version.
func (p *Projection) noteBad(rec events.Record) {
	switch {
	case rec.Err == nil:
	case errors.Is(rec.Err, events.ErrNewerVersion):
		p.log.Warn("parti: projection: record of a newer protocol version", "seq", rec.Seq, "version", rec.Version)
	default:
		p.garbage.Add(1)
		p.log.Warn("parti: projection: skipping garbage on the log", "seq", rec.Seq, "err", rec.Err)
	}
}
