package parti

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/jsretry"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/rawmember"
)

// owned is the member's record of one assignment handed to the
// application, its Context inside it: one allocation a partition.
type owned struct {
	partition string
	index     uint32
	token     events.Token
	ctx       assignmentContext
}

// assignment is o as the application sees it.
func (o *owned) assignment() Assignment {
	return Assignment{Partition: o.partition, Index: o.index, Token: o.token, Context: &o.ctx}
}

// Member is a running group member. Its methods are safe for concurrent use.
type Member struct {
	cfg    Config
	js     jetstream.JetStream
	stream jetstream.Stream
	subj   events.Subjects
	proj   *projection.Projection
	app    *projection.Appender
	log    *slog.Logger

	inbox chan func()
	ctx   context.Context
	stop  context.CancelFunc
	done  chan struct{}
	disp  *dispatcher
	lease *leaseGuard // the context of the current lease

	// loop goroutine only
	drv        *rawmember.Driver // the incarnations and the handler contract
	watchMu    sync.Mutex        // serialises watch changes (rewatch)
	watchGen   atomic.Uint64     // the latest watch change asked for
	watchStop  func()            // guarded by watchMu
	junk       junkCounter       // junk met on heartbeat subjects (hbjunk.go)
	lastSnap   uint64
	lastSnapAt time.Duration // when this member last wrote a snapshot (its clock)
	snapBusy   bool
	tailBusy   bool          // a CheckTail is in flight
	tailAt     time.Duration // when the last one started (its clock)
	tailNewest uint64        // the log's last sequence it read
	refolds    uint64        // the projection's refolds the raw member was told of
	health     health        // what the loop tells Live and Ready (health.go)

	appendMu   sync.Mutex
	appendOK   bool  // an append was acknowledged (or refused by a fence: the stream answered)
	appendLast error // the last append error otherwise

	mu       sync.Mutex
	owned    map[string]*owned // by partition ID
	deadline time.Duration
	id       string
	inc      uint64
	leader   bool
	granted  chan struct{}
	err      error
	ended    rawmember.StopReason // why the raw member stopped, once the loop ended
	gotGrant bool
}

func newNonce() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// Join provisions the group's stream if needed, claims an ID, and returns
// once the claim is granted. ctx bounds joining only (as a net.Dialer's
// context bounds dialing): once Join returned, the member heartbeats,
// judges, leads when the fold says so, and hands partitions to cfg.Handler
// until Leave, Close or Stop, whatever happens to ctx. Values of ctx are
// kept for the member's life.
func Join(ctx context.Context, js jetstream.JetStream, cfg Config) (*Member, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	subj, _ := events.NewSubjects(cfg.Group)
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// Until the claim is granted, ctx ending stops everything started.
	joining := context.AfterFunc(ctx, cancel)
	var stream jetstream.Stream
	var proj *projection.Projection
	// Not found right after Provision found or created the stream: a
	// replicated stream just created, which a server of the cluster does
	// not know yet. It passes like the other transient errors.
	retry := func(err error) bool {
		return jsretry.Transient(err) || errors.Is(err, jetstream.ErrStreamNotFound)
	}
	err := joinAttempts(ctx, cfg, retry, func(actx context.Context) error {
		var err error
		stream, err = projection.Provision(actx, js, projection.StreamConfig{Group: cfg.Group, Replicas: cfg.Replicas, Storage: cfg.Storage})
		if err != nil {
			return err
		}
		proj, err = projection.Start(mctx, js, projection.Config{Group: cfg.Group, Logger: cfg.Logger})
		return err
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("parti: join %s: %w", cfg.Group, err)
	}
	m := &Member{
		cfg: cfg, js: js, stream: stream, subj: subj, proj: proj,
		app:   projection.NewAppender(js, subj),
		log:   cfg.Logger.With("group", cfg.Group),
		inbox: make(chan func(), 1024), ctx: mctx, stop: cancel, done: make(chan struct{}),
		disp:  newDispatcher(cfg.Handler),
		lease: newLeaseGuard(mctx, cfg.Clock, cfg.Timings.Heartbeat/4),
		owned: map[string]*owned{}, granted: make(chan struct{}),
	}
	if err := refuseNewerGroup(ctx, cfg, proj, m.app, subj); err != nil {
		cancel()
		return nil, err
	}
	m.drv = rawmember.NewDriver(m.rawConfig(cfg.ID))
	// Actions go out as the state machine emits them: a heartbeat does not
	// wait for the handler calls of a large holding to be worked out.
	m.drv.Execute = func(r *rawmember.Member, acts []rawmember.Action) {
		// What the state machine just decided holds before its actions go
		// out: the protocol version they are written at, and its lease (a
		// revocation ends the lease's contexts now, and no ack landing
		// later in the step extends it).
		m.syncWriteVersion()
		m.mu.Lock()
		m.deadline = m.lease.set(r.LeaseDeadline())
		m.mu.Unlock()
		for _, a := range acts {
			m.execute(r, a)
		}
	}
	go m.disp.run()
	go m.loop()
	select {
	case <-m.granted:
		if joining() {
			return m, nil // from now on ctx has no say
		}
	case <-m.done:
		joining()
		return nil, m.Err()
	case <-ctx.Done():
	}
	cancel()
	<-m.done
	if ok, last := m.appends(); !ok && last != nil {
		// Not a refusal: the claim never got stored.
		return nil, fmt.Errorf("%w: %w: %w (last append error: %v)", ErrNotGranted, ErrNoWrites, context.Cause(ctx), last)
	}
	return nil, fmt.Errorf("%w: %w", ErrNotGranted, context.Cause(ctx))
}

// joinRetryFor bounds how long Join retries transient errors (a request
// timing out while a freshly created replicated stream elects its leader,
// no peers placed yet) when the caller's context has no earlier deadline.
const joinRetryFor = 30 * time.Second

// joinAttempts runs one of Join's requests: each attempt bounded by
// 2 x OpTimeout (an unanswered request, such as a stream create sent while
// a new cluster settles, costs one attempt, not all of ctx), transient
// failures (retry; nil: jsretry.Transient) retried for joinRetryFor.
func joinAttempts(ctx context.Context, cfg Config, retry func(error) bool, f func(ctx context.Context) error) error {
	return jsretry.DoEach(ctx, cfg.Logger, joinRetryFor, 2*cfg.OpTimeout, retry, f)
}

// raw returns the current incarnation's state machine.
func (m *Member) raw() *rawmember.Member { return m.drv.Member() }

func (m *Member) rawConfig(id string) rawmember.Config {
	return rawmember.Config{
		ID: id, Nonce: newNonce(), Timings: m.cfg.Timings, Window: m.cfg.Window,
		ExpectedMembers: m.cfg.ExpectedMembers, Grace: m.cfg.Grace,
		Declare: m.cfg.Partitions != nil, Partitions: m.cfg.Partitions, Weights: m.cfg.Weights,
		Strategy: m.cfg.Strategy,
		Labels:   events.LabelsOf(m.cfg.Labels), Capacity: m.cfg.Capacity, // placement (placement.go)
		Classes: m.cfg.classes(), ClassOf: m.cfg.classOf(),
	}
}

func (m *Member) now() time.Duration { return m.cfg.Clock.Now() }

// post runs f on the loop goroutine; it gives up when the member stopped.
func (m *Member) post(f func()) {
	select {
	case m.inbox <- f:
	case <-m.done:
	}
}

func (m *Member) loop() {
	defer close(m.done)
	defer m.shutdown()
	notify, unsub := m.proj.Notify()
	defer unsub()
	tick := m.cfg.Timings.Heartbeat / 4
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		m.step()
		if m.finished() {
			return
		}
		wait := tick
		if at, ok := m.raw().JudgeDueAt(); ok {
			// Wake when a verdict falls due, not up to a tick later.
			if d := at - m.now(); d > 0 && d < wait {
				wait = d
			}
		}
		m.mu.Lock()
		if len(m.owned) > 0 {
			if d := m.deadline - m.now(); d > 0 && d < wait {
				wait = d
			}
		}
		m.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-m.ctx.Done():
			m.fail(m.ctx.Err())
			return
		case <-m.proj.Done():
			m.fail(fmt.Errorf("parti: projection stopped: %w", m.proj.Err()))
			return
		case <-notify:
		case <-m.disp.returnedC():
			m.collectReturned()
		case f := <-m.inbox:
			f()
			for drained := false; !drained; {
				select {
				case f := <-m.inbox:
					f()
				default:
					drained = true
				}
			}
		case <-timer.C:
		}
	}
}

// collectReturned tells the contract which Revoked calls returned: a
// partition to hand off is let go of once its last one returned (the
// release is appended by the next step, which follows at once).
func (m *Member) collectReturned() {
	for _, c := range m.disp.takeReturned() {
		m.drv.Returned(c)
	}
}

// setEnded records why the member stopped (the first reason wins).
func (m *Member) setEnded(r rawmember.StopReason) {
	m.mu.Lock()
	if m.ended == rawmember.NotStopped {
		m.ended = r
	}
	m.mu.Unlock()
}

func (m *Member) fail(err error) {
	m.mu.Lock()
	if m.err == nil {
		m.err = err
	}
	m.mu.Unlock()
}

// finished reports whether the loop should end, carrying out the driver's
// decision when the incarnation stopped: rejoin as a new one, or end.
func (m *Member) finished() bool {
	r, rejoin := m.drv.Stopped()
	if r == rawmember.NotStopped {
		return false
	}
	if rejoin {
		id, inc, _ := m.raw().Identity()
		m.log.Warn("incarnation ended: rejoining as a new one", "member", id, "inc", inc, "reason", r.String())
		m.apply(m.drv.Rejoin(newNonce()))
		m.unwatch()
		return false
	}
	m.setEnded(r)
	if r == rawmember.StopNewerProtocol {
		m.log.Error("group log holds a newer protocol version: stopping")
		m.fail(ErrNewerProtocol)
		return true
	}
	m.fail(ErrStopped)
	return true
}

func (m *Member) step() {
	now := m.now()

	raw := m.raw()
	st := m.proj.Stats()
	if st.Refolds != m.refolds && !st.Refolding {
		// A refold replaced the state: the log went backwards.
		m.refolds, m.tailNewest = st.Refolds, 0
		raw.LogRewound()
	}
	if st.Lag > 0 {
		// The server holds log records the fold has not applied yet: the
		// member stops heartbeating if that lasts longer than the expiry.
		raw.Learned(st.LastApplied+1, now)
	}
	m.checkTail(now)
	m.cfg.Metrics.Records(st.Applied, st.Skipped)
	lag := st.Lag
	if m.tailNewest > st.LastApplied && !st.Refolding {
		lag = max(lag, m.tailNewest-st.LastApplied)
	}
	m.cfg.Metrics.FoldLag(lag)
	var phase string
	var members int
	var out rawmember.Output
	m.mu.Lock()
	m.deadline = m.lease.set(raw.LeaseDeadline())
	m.mu.Unlock()
	if m.lease.takeLapsed() {
		// The lease contexts ended (the assignments' too), perhaps just
		// before a renewal: what was handed out on them is over.
		m.apply(m.drv.LeaseLapsed())
	}
	m.proj.View(func(s *decider.State) {
		out = m.drv.Step(s, now)
		phase = s.Phase().String()
		members = len(s.LiveMembers())
		m.reportUnplaceable(s) // placement.go
	})
	m.syncWriteVersion()
	m.cfg.Metrics.Phase(phase)
	m.cfg.Metrics.Members(members)
	m.mu.Lock()
	m.deadline = m.lease.set(raw.LeaseDeadline()) // never below a renewal applied since (renewed)
	m.mu.Unlock()
	if id, inc, ok := raw.Identity(); ok {
		m.mu.Lock()
		m.id, m.inc = id, inc
		m.leader = raw.IsLeader()
		if !m.gotGrant {
			m.gotGrant = true
			close(m.granted)
		}
		m.mu.Unlock()
	}
	m.apply(out.Ready) // the actions went out through drv.Execute
	if out.Closed {
		m.setEnded(rawmember.StopClosed)
		m.fail(ErrStopped)
		m.stop()
	}
	m.observeHealth(now, st)
	m.maybeSnapshot()
}

// apply carries out the contract's output: each revocation cancels its
// assignment's context at once and queues its Revoked call, each assignment
// queues its Assigned call, in the contract's order. It never waits for the
// handler.
func (m *Member) apply(rd rawmember.Ready) {
	if len(rd.Calls) == 0 && len(rd.Reindexed) == 0 {
		return
	}
	calls := make([]call, 0, len(rd.Calls))
	var lease context.Context // one for the whole batch: reading the lease clock per call costs a syscall each
	m.mu.Lock()
	for _, o := range rd.Reindexed {
		if w := m.owned[o.ID]; w != nil {
			w.index = o.Index
		}
	}
	for _, c := range rd.Calls {
		if c.Revoke {
			o := m.owned[c.Owned.ID]
			delete(m.owned, c.Owned.ID)
			a := Assignment{Partition: c.Owned.ID, Index: c.Owned.Index, Token: c.Owned.Token}
			if o != nil {
				o.ctx.cancel()
				a.Context = &o.ctx
			}
			calls = append(calls, call{a: a, c: c})
			continue
		}
		if lease == nil {
			lease = m.lease.context()
		}
		o := &owned{partition: c.Owned.ID, index: c.Owned.Index, token: c.Owned.Token, ctx: assignmentContext{lease: lease}}
		m.owned[c.Owned.ID] = o
		calls = append(calls, call{a: o.assignment(), c: c})
	}
	n := len(m.owned)
	m.mu.Unlock()
	m.cfg.Metrics.Owned(n)
	m.disp.push(calls...)
}

func (m *Member) shutdown() {
	m.lease.stop()
	m.apply(m.drv.Stop())
	m.unwatch()
	m.stop()
	m.proj.Stop()
	m.disp.close()
}

// Leave hands every partition off now and stops once they are released (a
// partition is released once its Revoked call returned); it returns nil
// once the member has left.
//
// ctx bounds the waiting. If it ends first (or had already ended), the member
// stops at once, as Stop does: what it released is released, the rest moves
// when the group expires it. Leave then returns an error wrapping
// ErrCutShort and the context's error. On a member that already stopped,
// Leave returns an error wrapping ErrStopped.
func (m *Member) Leave(ctx context.Context) error {
	if err := m.canEnd(ctx, "leave"); err != nil {
		return err
	}
	m.post(func() { m.apply(m.drv.Leave()) })
	return m.waitEnd(ctx, rawmember.StopLeft, "leave")
}

// Close closes the member for a restart: it stops acting at once (every
// assignment is revoked with RevokeStopped), waits until every Revoked call
// returned, then appends its close and stops. The group keeps its ID and
// partitions for the grace period, so a new process that joins with the same
// ID within the grace takes them over without any move. It returns nil once
// the close is in the log.
//
// ctx bounds the waiting. If it ends before the close was appended (or had
// already ended), the member stops without it, as Stop does (its partitions
// move when the group expires it), and Close returns an error wrapping
// ErrCutShort and the context's error. A program that stops on a signal
// therefore gives Close a fresh context, not the signal's:
//
//	<-sigCtx.Done()
//	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//	defer cancel()
//	err := m.Close(ctx)
//
// On a member that already stopped, Close returns an error wrapping
// ErrStopped.
func (m *Member) Close(ctx context.Context) error {
	if err := m.canEnd(ctx, "close"); err != nil {
		return err
	}
	m.post(func() { m.apply(m.drv.Close()) })
	return m.waitEnd(ctx, rawmember.StopClosed, "close")
}

// canEnd checks, before Close or Leave starts, that the member runs and ctx
// is live; with ctx already ended it stops the member.
func (m *Member) canEnd(ctx context.Context, op string) error {
	select {
	case <-m.done:
		return fmt.Errorf("parti: %s: %w", op, ErrStopped)
	default:
	}
	if ctx.Err() != nil {
		m.Stop()
		return fmt.Errorf("parti: %s: %w: the context had already ended; stopped without telling the group: %w", op, ErrCutShort, context.Cause(ctx))
	}
	return nil
}

// waitEnd waits until the member stopped or ctx ended (then it stops the
// member) and says whether it stopped as want.
func (m *Member) waitEnd(ctx context.Context, want rawmember.StopReason, op string) error {
	select {
	case <-m.done:
	case <-ctx.Done():
		m.Stop()
		m.mu.Lock()
		ok := m.ended == want
		m.mu.Unlock()
		if ok {
			return nil // it ended just in time
		}
		return fmt.Errorf("parti: %s: %w: stopped without telling the group (its partitions move at expiry): %w", op, ErrCutShort, context.Cause(ctx))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended == want {
		return nil
	}
	if m.err != nil && !errors.Is(m.err, ErrStopped) {
		return fmt.Errorf("parti: %s: %w: %w", op, ErrStopped, m.err)
	}
	return fmt.Errorf("parti: %s: %w (%s)", op, ErrStopped, m.ended)
}

// Stop stops the member without telling the group (as a crash would): its
// partitions move when it is expired. For emergencies. It returns once the
// member's loop ended (handler calls already queued are still made, on their
// own goroutine); it may be called more than once.
func (m *Member) Stop() {
	m.stop()
	<-m.done
}
