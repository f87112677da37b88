package parti

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/jsretry"
	"github.com/parti-io/parti/liveness"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/rawmember"
)

// Sentinel errors of a member. Test for them with errors.Is.
var (
	// ErrStopped: the member has stopped (left, closed, or failed).
	ErrStopped = errors.New("parti: member stopped")
	// ErrNewerProtocol: the group's log raised the group's protocol version
	// (a valid version-set event) above what this build speaks; the member
	// stopped acting and heartbeating so that it is expired and its
	// partitions move, or Join refused before appending anything. A stray
	// record of an unknown version is junk and stops nobody.
	ErrNewerProtocol = errors.New("parti: group uses a newer protocol")
	// ErrNotGranted: the member's claim was not granted before the context
	// ended.
	ErrNotGranted = errors.New("parti: claim not granted")
	// ErrCutShort: Close or Leave gave up waiting because its context
	// ended (or had already ended when it was called). The error also wraps
	// the context's error. See Close and Leave for what was done and what
	// was not.
	ErrCutShort = errors.New("parti: cut short by its context")
	// ErrNoWrites: the group's stream acknowledged none of the member's
	// writes (a full disk, a stream without a leader, a missing publish
	// permission). Join's error wraps it with ErrNotGranted when the claim
	// itself could not be stored, with the last append error.
	ErrNoWrites = errors.New("parti: the stream does not answer writes")
)

// RevokeReason says why an assignment was revoked.
type RevokeReason int

// Revoke reasons.
const (
	// RevokeMoved: the partition moves to another member, or a
	// re-declaration gave it a new index and so a new token (it is then
	// assigned again at once, with the new token).
	RevokeMoved RevokeReason = iota + 1
	// RevokeLeaseLost: the member's lease lapsed (its heartbeats were not
	// acknowledged in time); it may get the partition back when heartbeats
	// land again.
	RevokeLeaseLost
	// RevokeStopped: the member stopped (leave, close, removal).
	RevokeStopped
	// RevokeDropped: the partition is no longer in the declared set.
	RevokeDropped
)

func (r RevokeReason) String() string {
	switch r {
	case RevokeMoved:
		return "moved"
	case RevokeLeaseLost:
		return "lease-lost"
	case RevokeStopped:
		return "stopped"
	case RevokeDropped:
		return "dropped"
	}
	return "unknown"
}

// Assignment is one partition the member owns.
type Assignment struct {
	// Partition is the partition's ID and Index its index in the declared
	// set.
	Partition string
	Index     uint32
	// Token is the fencing token: pass it to your storage, which must reject
	// writes carrying a token lower than the highest it has seen for the
	// partition.
	Token events.Token
	// Context is cancelled when the assignment is revoked, and at the lease
	// deadline by a timer of its own, whatever the member is doing (a
	// renewed lease keeps it). Go timers do not count a suspend: after one,
	// it ends at the member's first check of its clock on waking, within a
	// quarter of the heartbeat interval, while Owns, which reads the clock,
	// is exact throughout.
	Context context.Context
}

// Handler receives assignment changes. Its methods are called from one
// goroutine, one at a time, in order: within one change, every revocation
// (in partition index order) before any assignment (in index order); the
// contract is package rawmember's Handoff, which partitest and the
// simulator drive too. They may block: a blocking Revoked delays the
// hand-off of that partition (the release is appended only after Revoked
// returns) and Close, a blocking Assigned delays the calls after it. The
// member never waits for them: heartbeats, judging and the fold go on, and
// an assignment's Context still ends at the lease deadline.
type Handler interface {
	// Assigned: the member may act on a from now until a.Context ends.
	Assigned(a Assignment)
	// Revoked: stop acting on a; return once you have.
	Revoked(a Assignment, why RevokeReason)
}

// HandlerFuncs adapts two functions to a Handler; either may be nil.
type HandlerFuncs struct {
	OnAssigned func(Assignment)
	OnRevoked  func(Assignment, RevokeReason)
}

// Assigned implements Handler.
func (h HandlerFuncs) Assigned(a Assignment) {
	if h.OnAssigned != nil {
		h.OnAssigned(a)
	}
}

// Revoked implements Handler.
func (h HandlerFuncs) Revoked(a Assignment, why RevokeReason) {
	if h.OnRevoked != nil {
		h.OnRevoked(a, why)
	}
}

type owned struct {
	a      Assignment
	cancel context.CancelFunc
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
	raw         *rawmember.Member
	watchMu     sync.Mutex    // serialises watch changes (rewatch)
	watchGen    atomic.Uint64 // the latest watch change asked for
	watchStop   func()        // guarded by watchMu
	junk        junkCounter   // junk met on heartbeat subjects (hbjunk.go)
	closeWanted bool
	closeSent   bool // the close was handed to the raw member (after every Revoked returned)
	leaveWanted bool
	ho          *rawmember.Handoff // the handler contract: which calls, in which order
	lastSnap    uint64
	lastSnapAt  time.Duration // when this member last wrote a snapshot (its clock)
	snapBusy    bool
	tailBusy    bool          // a CheckTail is in flight
	tailAt      time.Duration // when the last one started (its clock)
	tailNewest  uint64        // the log's last sequence it read
	refolds     uint64        // the projection's refolds the raw member was told of
	health      health        // what the loop tells Live and Ready (health.go)

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
	err := jsretry.Do(ctx, cfg.Logger, joinRetryFor, retry, func() error {
		var err error
		stream, err = projection.Provision(ctx, js, projection.StreamConfig{Group: cfg.Group, Replicas: cfg.Replicas, Storage: cfg.Storage})
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
		ho:    rawmember.NewHandoff(),
		owned: map[string]*owned{}, granted: make(chan struct{}),
	}
	if err := refuseNewerGroup(ctx, proj, m.app, subj); err != nil {
		cancel()
		return nil, err
	}
	m.raw = m.newRaw(cfg.ID)
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

func (m *Member) newRaw(id string) *rawmember.Member {
	r := rawmember.New(rawmember.Config{
		ID: id, Nonce: newNonce(), Timings: m.cfg.Timings, Window: m.cfg.Window,
		ExpectedMembers: m.cfg.ExpectedMembers, Grace: m.cfg.Grace,
		Declare: m.cfg.Partitions != nil, Partitions: m.cfg.Partitions, Weights: m.cfg.Weights,
		Strategy: m.cfg.Strategy,
		Labels:   events.LabelsOf(m.cfg.Labels), Capacity: m.cfg.Capacity, // placement (placement.go)
		Classes: m.cfg.classes(), ClassOf: m.cfg.classOf(),
	})
	r.Start()
	return r
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
		if at, ok := m.raw.JudgeDueAt(); ok {
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
		m.ho.Returned(m.raw, c)
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

// finished reports whether the loop should end, handling a stop of the raw
// member: an expired or removed incarnation rejoins as a new one.
func (m *Member) finished() bool {
	r := m.raw.Stopped()
	if r == rawmember.NotStopped {
		return false
	}
	if rawmember.Rejoin(r, m.leaveWanted || m.closeWanted) {
		id, inc, _ := m.raw.Identity()
		m.log.Warn("incarnation ended: rejoining as a new one", "member", id, "inc", inc, "reason", r.String())
		m.apply(m.ho.RevokeAll(rawmember.ReasonStopped))
		m.unwatch()
		m.raw = m.newRaw(id)
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
	st := m.proj.Stats()
	if st.Refolds != m.refolds && !st.Refolding {
		// A refold replaced the state: the log went backwards.
		m.refolds, m.tailNewest = st.Refolds, 0
		m.raw.LogRewound()
	}
	if st.Lag > 0 {
		// The server holds log records the fold has not applied yet: the
		// member stops heartbeating if that lasts longer than the expiry.
		m.raw.Learned(st.LastApplied+1, now)
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
	var closing bool
	var rd rawmember.Ready
	m.lease.set(m.raw.LeaseDeadline())
	if m.lease.takeLapsed() {
		// The lease contexts ended (the assignments' too), perhaps just
		// before a renewal: what was handed out on them is over.
		m.apply(m.ho.RevokeAll(rawmember.ReasonLeaseLost))
	}
	m.proj.View(func(s *decider.State) {
		m.raw.Step(s, now)
		rd = m.ho.Step(m.raw, s, now)
		phase = s.Phase().String()
		members = len(s.LiveMembers())
		m.reportUnplaceable(s) // placement.go
		if id, inc, ok := m.raw.Identity(); ok && m.closeWanted {
			closing = rawmember.CloseLanded(s, id, inc)
		}
	})
	m.syncWriteVersion()
	m.cfg.Metrics.Phase(phase)
	m.cfg.Metrics.Members(members)
	m.lease.set(m.raw.LeaseDeadline())
	if id, inc, ok := m.raw.Identity(); ok {
		m.mu.Lock()
		m.id, m.inc = id, inc
		m.leader = m.raw.IsLeader()
		m.deadline = m.raw.LeaseDeadline()
		if !m.gotGrant {
			m.gotGrant = true
			close(m.granted)
		}
		m.mu.Unlock()
	}
	for _, a := range m.raw.Actions() {
		m.execute(a)
	}
	m.apply(rd)
	if rd.LetGo {
		// Releases are appended by the raw member's next step: take it now
		// rather than at the next tick, so a hand-off does not wait for it.
		m.proj.View(func(s *decider.State) { m.raw.Step(s, now) })
		for _, a := range m.raw.Actions() {
			m.execute(a)
		}
	}
	if m.closeWanted && !m.closeSent && m.ho.Quiet() {
		// Every Revoked call returned: only now may a new process with
		// this ID be granted the partitions.
		m.closeSent = true
		m.proj.View(func(s *decider.State) { m.raw.Step(s, now) })
		m.raw.Close()
		for _, a := range m.raw.Actions() {
			m.execute(a)
		}
	}
	if closing && m.closeSent {
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
	m.mu.Lock()
	for _, o := range rd.Reindexed {
		if w := m.owned[o.ID]; w != nil {
			w.a.Index = o.Index
		}
	}
	for _, c := range rd.Calls {
		if c.Revoke {
			o := m.owned[c.Owned.ID]
			delete(m.owned, c.Owned.ID)
			a := Assignment{Partition: c.Owned.ID, Index: c.Owned.Index, Token: c.Owned.Token}
			if o != nil {
				o.cancel()
				a.Context = o.a.Context
			}
			calls = append(calls, call{a: a, c: c})
			continue
		}
		ctx, cancel := context.WithCancel(m.lease.context())
		o := &owned{a: Assignment{Partition: c.Owned.ID, Index: c.Owned.Index, Token: c.Owned.Token, Context: ctx}, cancel: cancel}
		m.owned[c.Owned.ID] = o
		calls = append(calls, call{a: o.a, c: c})
	}
	n := len(m.owned)
	m.mu.Unlock()
	m.cfg.Metrics.Owned(n)
	m.disp.push(calls...)
}

func (m *Member) shutdown() {
	m.lease.stop()
	m.apply(m.ho.Stop(rawmember.ReasonStopped))
	m.unwatch()
	m.stop()
	m.proj.Stop()
	m.disp.close()
}

func (m *Member) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(m.ctx, m.cfg.OpTimeout)
}

// hbCtx bounds a heartbeat, a verdict or the read of a heartbeat subject: an
// ack slower than the heartbeat interval (or the ack budget, if longer) is
// not waited for. The outcome is then unknown and the subject's last message
// settles it, so a member that was stuck in a stream election recovers
// within one interval of the stream's return instead of one OpTimeout,
// which could exceed a short expiry.
func (m *Member) hbCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(m.ctx, max(m.cfg.Timings.AckBudget, m.cfg.Timings.Heartbeat))
}

func (m *Member) execute(a rawmember.Action) {
	raw := m.raw // results go to the incarnation that asked
	switch a.Kind {
	case rawmember.ActAppend:
		go func() {
			ctx, cancel := m.opCtx()
			defer cancel()
			var seq uint64
			var err error
			switch {
			case len(a.Events) > 1:
				seq, err = m.app.AppendBatch(ctx, a.Events, a.Fence)
			case a.Fenced:
				seq, err = m.app.AppendFenced(ctx, a.Events[0], a.Fence)
			default:
				seq, err = m.app.Append(ctx, a.Events[0])
			}
			m.appended(err)
			if errors.Is(err, projection.ErrConflict) {
				m.cfg.Metrics.AppendConflict(a.Events[0].Type().String())
				err = fmt.Errorf("%w: %w", rawmember.ErrConflict, err)
			} else if err != nil && m.ctx.Err() != nil {
				// The member stopped (a Close or Leave that finished, or
				// Stop) while the append was in flight: its outcome no
				// longer matters here, and it may well have landed.
				m.log.Debug("append abandoned: the member stopped", "type", a.Events[0].Type().String(), "err", err)
			} else if err != nil {
				m.log.Warn("append failed", "type", a.Events[0].Type().String(), "err", err)
			}
			if err == nil {
				if d, ok := a.Events[0].(*events.AssignmentDecided); ok {
					n := 0
					for _, ev := range a.Events {
						for _, mv := range ev.(*events.AssignmentDecided).Moves {
							n += mv.Parts.Len()
						}
					}
					m.cfg.Metrics.Rebalance(d.Reason, n)
				}
			}
			m.post(func() { raw.Done(a.ID, seq, err, m.now()) })
		}()
	case rawmember.ActHeartbeat:
		subject := m.subj.Heartbeat(a.Member, a.Inc)
		go func() {
			ctx, cancel := m.hbCtx()
			defer cancel()
			seq, err := m.app.Heartbeat(ctx, subject, a.Heartbeat, a.Fence, m.cfg.HeartbeatTTL)
			m.cfg.Metrics.Heartbeat(err == nil)
			m.post(func() {
				switch {
				case err != nil:
					// A refusal by the fence (10071) or by a proposal in
					// flight (10164, a stream-leader election) is the same
					// error as any other failure: a gap for the judge, and
					// the subject's last message settles it.
					m.heartbeatFailed(err)
					raw.HeartbeatFailed(a.ID, m.now(), true)
				default:
					m.heartbeatAcked()
					raw.HeartbeatAcked(a.ID, seq, m.now())
				}
			})
		}()
	case rawmember.ActReadLast:
		subject := m.subj.Heartbeat(a.Member, a.Inc)
		go func() {
			ctx, cancel := m.hbCtx()
			defer cancel()
			rec, found, err := m.app.LastOnSubject(ctx, subject)
			last := liveness.LastMessage{Empty: true}
			if found {
				last, _ = heartbeatMessage(rec)
				if v, ok := m.verdictAfter(ctx, subject, a.Member, a.Inc, a.Fence, rec.Seq); ok {
					last = v
				}
			}
			m.post(func() {
				before := raw.JunkSeen()
				raw.HeartbeatResolved(last, err == nil)
				if raw.JunkSeen() > before {
					m.noteJunk(subject, last, junkReason(last))
				}
			})
		}()
	case rawmember.ActVerdict:
		subject := m.subj.Heartbeat(a.Member, a.Inc)
		go func() {
			ctx, cancel := m.hbCtx()
			defer cancel()
			seq, err := m.app.PublishVerdict(ctx, subject, a.Verdict, a.Fence)
			if errors.Is(err, projection.ErrConflict) {
				err = fmt.Errorf("%w: %w", rawmember.ErrConflict, err)
			}
			if err == nil {
				m.cfg.Metrics.Verdict()
				m.log.Info("expired a member", "member", a.Member, "inc", a.Inc, "span_ms", a.Verdict.SpanMillis)
			}
			m.post(func() { raw.VerdictDone(a.ID, seq, err) })
		}()
	case rawmember.ActWatch:
		// Off the loop goroutine: starting or stopping a watch waits on
		// the server (an ordered consumer's stop can wait through its
		// retries while a replicated stream elects a leader), and the loop
		// must keep heartbeating and revoking meanwhile.
		gen := m.watchGen.Add(1)
		go m.rewatch(gen, raw, a.Member, a.Inc)
	case rawmember.ActUnwatch:
		m.unwatch()
	}
}

// unwatch stops watching a heartbeat subject, in the background.
func (m *Member) unwatch() {
	gen := m.watchGen.Add(1)
	go m.rewatch(gen, nil, "", 0)
}

// rewatch replaces the heartbeat-subject watch by one of member's
// incarnation inc (none when member is ""), unless a newer change was asked
// for meanwhile. Changes are serialised by watchMu.
func (m *Member) rewatch(gen uint64, raw *rawmember.Member, member string, inc uint64) {
	m.watchMu.Lock()
	defer m.watchMu.Unlock()
	if m.watchStop != nil {
		m.watchStop()
		m.watchStop = nil
	}
	if member == "" || gen != m.watchGen.Load() || m.ctx.Err() != nil {
		return
	}
	subject := m.subj.Heartbeat(member, inc)
	stop, err := projection.WatchSubject(m.ctx, m.js, m.stream.CachedInfo().Config.Name, subject, func(r events.Record) {
		// Every record goes to the judge, junk too: the verdict is fenced
		// on the subject's last sequence whatever that message holds.
		msg, v := heartbeatMessage(r)
		m.post(func() {
			if raw.VictimRecord(member, inc, msg, v, m.now(), rawmember.Stamps{}) {
				m.noteJunk(subject, msg, junkReason(msg))
				m.cfg.Metrics.Junk("heartbeat-subject")
			}
		})
	})
	if err != nil {
		m.log.Warn("watching a heartbeat subject failed", "member", member, "err", err)
		return
	}
	if gen != m.watchGen.Load() {
		stop() // superseded while it started
		return
	}
	m.watchStop = stop
}

// checkTail reads the log subject's last sequence once per heartbeat
// interval, in the background. Deliveries and the member's own appends are
// not enough to know how far the log goes: a tail that stopped delivering
// on a healthy connection would leave the fold frozen while the member
// heartbeats (and, leading, fails every fenced decision). The raw member
// learns the sequence, so a fold behind it for longer than the expiry stops
// heartbeating, and the projection replaces a tail that applied nothing
// between two checks.
func (m *Member) checkTail(now time.Duration) {
	if m.tailBusy || (m.tailAt != 0 && now-m.tailAt < m.cfg.Timings.Heartbeat) {
		return
	}
	m.tailBusy, m.tailAt = true, max(now, 1)
	refolds := m.refolds
	go func() {
		ctx, cancel := m.hbCtx()
		defer cancel()
		newest, stalled, err := m.proj.CheckTail(ctx)
		if stalled {
			m.cfg.Metrics.TailStalled()
		}
		m.post(func() {
			m.tailBusy = false
			if err != nil {
				m.log.Debug("reading the log's last sequence failed", "err", err)
				return
			}
			if m.refolds != refolds {
				return // read before the log went backwards: it may name a lost record
			}
			m.tailNewest = newest
			// Learned when the read began: if anything, sooner than the
			// record was there, so the member stops heartbeating no later
			// than the bound.
			m.raw.Learned(newest, now)
		})
	}()
}

func (m *Member) maybeSnapshot() {
	if m.snapBusy || !m.raw.IsLeader() {
		return
	}
	policy := rawmember.SnapshotPolicy{Every: m.cfg.SnapshotEvery, TTL: m.cfg.SnapshotTTL}
	if !policy.Due(m.proj.LastApplied(), m.lastSnap, m.now(), m.lastSnapAt) {
		return
	}
	st := m.proj.State()
	m.snapBusy = true
	go func() {
		ctx, cancel := context.WithTimeout(m.ctx, 10*m.cfg.OpTimeout)
		defer cancel()
		err := projection.WriteSnapshot(ctx, m.app, st, m.cfg.SnapshotTTL, 0)
		m.post(func() {
			m.snapBusy = false
			if err != nil {
				m.log.Warn("snapshot failed", "err", err)
				return
			}
			m.lastSnap, m.lastSnapAt = st.LastSeq, m.now()
		})
	}()
}

// ID returns the member's granted ID.
func (m *Member) ID() string { m.mu.Lock(); defer m.mu.Unlock(); return m.id }

// Incarnation returns the member's current incarnation.
func (m *Member) Incarnation() uint64 { m.mu.Lock(); defer m.mu.Unlock(); return m.inc }

// IsLeader reports whether this member's fold says it leads the group.
func (m *Member) IsLeader() bool { m.mu.Lock(); defer m.mu.Unlock(); return m.leader }

// Assigned returns the partitions the member may act on now, sorted by
// index. Empty while the lease is not valid.
func (m *Member) Assigned() []Assignment {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now >= m.deadline {
		return nil
	}
	out := make([]Assignment, 0, len(m.owned))
	for _, o := range m.owned {
		out = append(out, o.a)
	}
	sortAssignments(out)
	return out
}

// Owns reports whether the member may act on partition with token now: it
// owns it with that token and its lease is valid.
func (m *Member) Owns(partition string, token events.Token) bool {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now >= m.deadline {
		return false
	}
	o, ok := m.owned[partition]
	return ok && o.a.Token == token
}

// leaseDeadline returns the member's lease deadline as a reading of its clock
// (Config.Clock): it may act until the clock passes it. Tests read it
// through internal/testhooks.
func (m *Member) leaseDeadline() time.Duration { m.mu.Lock(); defer m.mu.Unlock(); return m.deadline }

// State returns a copy of the member's folded state.
func (m *Member) State() *decider.State { return m.proj.State() }

// LastApplied returns the last log sequence the member's fold applied.
func (m *Member) LastApplied() uint64 { return m.proj.LastApplied() }

// WaitStable waits until the member's fold shows a stable group (every
// partition owned, nothing moving, no window) in which this member owns,
// with a valid lease, exactly what the fold gives it.
func (m *Member) WaitStable(ctx context.Context) error {
	notify, unsub := m.proj.Notify()
	defer unsub()
	t := time.NewTicker(m.cfg.Timings.Heartbeat / 4)
	defer t.Stop()
	for {
		ok := false
		id, inc := m.ID(), m.Incarnation()
		m.proj.View(func(s *decider.State) {
			if s.Phase() != decider.PhaseStable || s.Incarnation(id, inc) == nil {
				return
			}
			want := len(s.Owned(id, inc))
			m.mu.Lock()
			ok = len(m.owned) == want && m.now() < m.deadline
			m.mu.Unlock()
		})
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.done:
			return m.Err()
		case <-notify:
		case <-t.C:
		}
	}
}

// GroupSettled reports whether this member's fold shows a settled group:
// stable (every partition owned, nothing moving, no window open), n live
// members if n > 0, and nothing left for the leader to decide. Status pages,
// demos and deployment scripts wait on it.
func (m *Member) GroupSettled(n int) bool {
	ok := false
	m.proj.View(func(s *decider.State) {
		if s.Phase() != decider.PhaseStable || (n > 0 && len(s.LiveMembers()) != n) {
			return
		}
		l, found := s.Leader()
		if !found {
			return
		}
		d, err := decider.Decide(s, l.ID, l.Incarnation)
		ok = err == nil && d == nil
	})
	return ok
}

// Done is closed when the member has stopped.
func (m *Member) Done() <-chan struct{} { return m.done }

// Err returns why the member stopped (ErrStopped after Leave or Close), or
// nil while it runs.
func (m *Member) Err() error { m.mu.Lock(); defer m.mu.Unlock(); return m.err }

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
	m.post(func() {
		m.leaveWanted = true
		m.raw.Leave()
		m.apply(m.ho.Stop(rawmember.ReasonStopped))
	})
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
	m.post(func() {
		m.closeWanted = true
		m.apply(m.ho.Stop(rawmember.ReasonStopped))
	})
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

// SetPartitions changes the partition set this member declares when it leads.
func (m *Member) SetPartitions(ids []string, weights []uint32) error {
	c := m.cfg
	c.Partitions, c.Weights = ids, weights
	if err := c.Validate(); err != nil {
		return err
	}
	m.post(func() { m.raw.SetPartitions(ids, weights, "") })
	return nil
}

// Operate appends an operator action (drain, cordon, uncordon, pause, resume,
// force-expire, move) to the log after checking it against the current
// state; the audit shows it with By. A force-expire that names no
// incarnation is for the one this member's fold shows now.
func (m *Member) Operate(ctx context.Context, a events.OperatorAction) error {
	var ev *events.OperatorAction
	var err error
	m.proj.View(func(s *decider.State) {
		if a.Action == events.OpForceExpire && a.Incarnation == 0 {
			if cur := s.Member(a.Member); cur != nil {
				a.Incarnation = cur.Incarnation
			}
		}
		ev, err = decider.Operator(s, a)
	})
	if err != nil {
		return err
	}
	_, err = m.app.Append(ctx, ev)
	return err
}

func sortAssignments(a []Assignment) {
	slices.SortFunc(a, func(x, y Assignment) int { return cmp.Compare(x.Index, y.Index) })
}

// appended records an append's outcome for Join's error.
func (m *Member) appended(err error) {
	m.appendMu.Lock()
	defer m.appendMu.Unlock()
	if err == nil || errors.Is(err, projection.ErrConflict) {
		m.appendOK = true
		return
	}
	if errors.Is(err, context.Canceled) && m.appendLast != nil {
		return // the member stopping; the error before says more
	}
	m.appendLast = err
}

// appends reports whether the stream answered an append, and the last
// append error.
func (m *Member) appends() (answered bool, last error) {
	m.appendMu.Lock()
	defer m.appendMu.Unlock()
	return m.appendOK, m.appendLast
}
