// Package rawmember is the pure state machine of one group member: what a
// member does, given what it has folded, what its own clock reads and what the
// stream answered. It performs no I/O, reads no clock and starts no goroutine:
// every input arrives as a method call, every output is an [Action] the caller
// carries out and reports back. The runtime (package parti) drives it over a
// real JetStream stream; the simulator (test/sim) drives it over a modelled
// one. Both therefore test the same code.
//
// The pattern is etcd's RawNode: a single-threaded, clock-free core wrapped by
// a driver that owns timers and I/O.
//
// A member goes through: claiming its ID (a [ActAppend] of the claim), granted
// (the fold names its nonce), heartbeating (fenced, only while its fold has
// caught up), judging its ring neighbour, leading when the fold says it is the
// leader, and finally stopped (left, closed, removed, expired, or a newer
// protocol met). A stopped member stays stopped: rejoin with a new Member.
package rawmember

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
)

// Config configures a member. Durations are measured on the member's own
// boot clock.
type Config struct {
	// ID is the member ID to claim; empty claims the lowest free worker slot.
	ID string
	// Nonce is the process's random nonce (required, unique per process).
	Nonce string
	// Timings are the liveness timings (validated by the caller).
	Timings liveness.Timings
	// Window is how long the leader batches planned joins before one
	// rebalance.
	Window time.Duration
	// ExpectedMembers closes a window early once that many members are live
	// (0: never early).
	ExpectedMembers int
	// Grace is how long a closed (restarting) incarnation keeps its ID and
	// partitions.
	Grace time.Duration
	// Partitions, Weights and Strategy are what this member declares when it
	// leads. Declare is false for members that never declare.
	Declare    bool
	Partitions []string
	Weights    []uint32
	Strategy   string
	// Classes and ClassOf are the constraint classes this member declares
	// with Partitions (ClassOf nil or parallel to Partitions); Labels and
	// Capacity travel in its claim (see events.MemberClaimed).
	Classes  []events.Class
	ClassOf  []uint32
	Labels   []string
	Capacity uint32
	// MaxIDsPerPart and MaxRangesPerPart split large declarations and
	// decisions into parts of one atomic batch (0: defaults).
	MaxIDsPerPart    int
	MaxRangesPerPart int
	// PinProtocol, when not 0, is the highest protocol version the leader
	// raises the group to; 0 raises it, automatically, to the highest
	// version every live member speaks (never above this build's).
	PinProtocol uint16
	// NewJudge builds the member's expiry judge from the configuration its
	// Timings give ([liveness.Timings.JudgeConfig]); nil is
	// [liveness.NewJudge]. A caller that supplies it takes over the expiry
	// rule: it may wrap the default judge (to observe or log what it
	// decides) or replace it, and answers for what the judge decides.
	NewJudge func(liveness.JudgeConfig) (Judge, error)
}

// Judge is what a member asks of its expiry judge: the methods of
// [liveness.Judge], whose documentation gives their meaning. The member
// reports its victim's messages, its own heartbeats' acknowledgements and
// failures to it, and appends a verdict when Due says so.
type Judge interface {
	Watch(victimMember string, victimIncarnation uint64, now time.Duration)
	Unwatch()
	ObserveVictim(seq uint64, now time.Duration)
	ObserveOther(seq uint64)
	Refence(seq uint64)
	OwnAck(sentAt, ackedAt time.Duration)
	OwnFailure(now time.Duration)
	DueAt() (at time.Duration, ok bool)
	Due(now time.Duration) (due bool, span time.Duration, fenceSeq uint64)
}

var _ Judge = (*liveness.Judge)(nil)

// DefaultMaxRangesPerPart keeps one decision part well under 1 MiB.
const DefaultMaxRangesPerPart = 20000

// ActionKind says what an Action asks the driver to do.
type ActionKind int

// Action kinds.
const (
	// ActAppend appends Events to the log subject: one event alone, several
	// as one atomic batch. Fenced appends carry Fence (the expected last
	// sequence of the log subject); Report with Done.
	ActAppend ActionKind = iota + 1
	// ActHeartbeat appends Heartbeat on the member's heartbeat subject,
	// fenced on Fence unless Unfenced; report with HeartbeatAcked or
	// HeartbeatFailed.
	ActHeartbeat
	// ActVerdict appends Verdict on the victim's heartbeat subject, fenced
	// on Fence; report with VerdictDone.
	ActVerdict
	// ActWatch starts watching the heartbeat subject of (Member, Inc) and
	// stops watching the previous one; report with VictimMessage.
	ActWatch
	// ActUnwatch stops watching any heartbeat subject.
	ActUnwatch
	// ActReadLast reads the last message of the member's own heartbeat
	// subject; report with HeartbeatResolved.
	ActReadLast
)

// Action is one thing the driver must do.
type Action struct {
	Kind ActionKind
	// ID identifies the action in the report (ActAppend, ActHeartbeat,
	// ActVerdict).
	ID uint64
	// Events to append (ActAppend).
	Events []events.Event
	// Fenced and Fence: append only if the subject's last sequence is Fence.
	// For ActReadLast of the member's own subject, Fence is its heartbeat
	// fence: the driver reports the first verdict naming the subject's
	// incarnation stored after Fence, if there is one, instead of the last
	// message (junk stored on top of a verdict must not hide it).
	Fenced bool
	Fence  uint64
	// Heartbeat to append (ActHeartbeat).
	Heartbeat *events.Heartbeat
	// Renews is the lease deadline an acknowledgement of this heartbeat
	// gives (ActHeartbeat; 0: none, a claim's heartbeat or a revoked
	// lease): its send reading plus the lease. HeartbeatAcked applies it
	// to the member; a driver whose loop may be busy when the ack arrives
	// may extend what it enforces (contexts ending at the deadline) to it
	// at once, but only while the member's lease is live, and never beyond.
	Renews time.Duration
	// Verdict to append (ActVerdict).
	Verdict *events.ExpiryVerdict
	// Member and Inc name the subject's incarnation (ActWatch, ActVerdict,
	// ActHeartbeat).
	Member string
	Inc    uint64
}

// StopReason says why a member stopped.
type StopReason int

// Stop reasons.
const (
	NotStopped        StopReason = iota
	StopLeft                     // a graceful leave completed
	StopClosed                   // closed for a restart
	StopRemoved                  // the fold shows its incarnation removed
	StopExpired                  // its heartbeat subject holds a verdict (or another process's heartbeat)
	StopNewerProtocol            // the log holds a record of a newer protocol
)

func (r StopReason) String() string {
	return [...]string{"running", "left", "closed", "removed", "expired", "newer-protocol"}[r]
}

// Owned is one partition the member owns and may act on.
type Owned struct {
	Index uint32
	ID    string
	Token events.Token
}

// forcedWait is a forced verdict waiting for the victim's lease to run out.
type forcedWait struct {
	started bool          // at is set (a verdict that landed starts at the next Step)
	at      time.Duration // the reading from which the expiry is measured
	seq     uint64        // the verdict's sequence
	v       *events.ExpiryVerdict
	own     bool // this member appended the verdict
}

// readKind says whose heartbeat subject an outstanding read is of.
type readKind uint8

const (
	readNone   readKind = iota
	readOwn             // the member's own (or its claim's) subject
	readVictim          // the watched victim's subject, after a refused verdict
)

// ErrConflict is what a driver reports (wrapped or as is) when a fenced
// append was refused because the subject's last sequence differed.
var ErrConflict = errors.New("rawmember: fence conflict")

// Member is the state machine. It is not safe for concurrent use.
type Member struct {
	cfg Config

	// identity
	granted  bool
	id       string
	inc      uint64
	claimSeq uint64
	stopped  StopReason
	leaving  bool
	closing  bool

	// liveness
	hb         *liveness.Heartbeater
	lease      *liveness.Lease
	judge      Judge
	catchUp    liveness.CatchUp
	hbOut      uint64 // outstanding heartbeat action
	hbClaim    bool   // ... which is a claim heartbeat
	hbSentAt   time.Duration
	hbResolve  bool          // waiting for HeartbeatResolved
	resClaim   bool          // ... of the claim subject
	claimID    string        // the ID this process's waiting claim judges the holder of
	claimInc   uint64        // the incarnation naming its claim subject (ClaimIncarnation)
	claimPrev  uint64        // fence of the next claim heartbeat
	claimLast  time.Duration // when the last claim heartbeat was sent
	claimAny   bool
	lastHB     time.Duration
	sentAny    bool
	watching   string
	watchInc   uint64
	watchNonce string // the watched incarnation's nonce, as the fold says
	// watchForced is the log sequence of an operator's force-expire of the
	// watched incarnation, as the fold says (0: none): the verdict is due at
	// once, and the removal waits (forced).
	watchForced uint64
	// sighted is the sequence of the victim's own fenced heartbeat that a
	// read after a refused verdict found; the next judgeStep restarts the
	// count with it.
	sighted uint64
	// forced holds forced verdicts that landed or were seen, by victim key:
	// the removal is appended once the expiry, measured on this member's
	// clock from when it saw the verdict, has passed.
	forced map[string]forcedWait
	// follow holds verdicts of other judges (by victim key) whose removal
	// this member appends only if the fold still shows the victim a
	// member followDelay after it saw the verdict: the verdict's judge
	// appends it, and a second judge of the same victim (a restart's
	// waiting claim and the ring judge) appending it too made two removals
	// for one expiry.
	follow     map[string]forcedWait
	verdictOut uint64
	verdictFor string
	verdict    *events.ExpiryVerdict // the verdict in flight

	// Reads of a heartbeat subject's last message (ActReadLast) are
	// reported by HeartbeatResolved, which does not say which subject was
	// read: so at most one read is outstanding, readOut says whose, and a
	// read asked for meanwhile waits (ownReadWanted, victimReadWanted).
	readOut          readKind
	readFor          string // the victim's key, for a victim read
	ownReadWanted    bool
	victimReadWanted bool
	refusedAt        time.Duration // when the heartbeat being resolved was refused
	refused          bool          // ... refused by the fence (not a timeout)
	// hbNow sends the next heartbeat at once, not after the interval: after
	// an adopt (junk on the subject), so that junk costs one round trip, not
	// the lease.
	hbNow bool
	junk  uint64 // junk seen on the own and the watched subject

	// fold view (refreshed by Step)
	protocol    uint16 // the group's folded protocol version (0: version 1)
	declVersion uint64
	lastSeq     uint64
	view        []Owned
	viewGen     uint64    // changes whenever view does
	declGen     uint64    // changes whenever SetPartitions or SetPlacement does
	declSame    [2]uint64 // {DeclVersion, declGen} at which the fold was last found to declare what the config does
	undecided   uint64    // the fold's LastSeq at which Decide last found nothing to decide (0: none)
	revoking    []uint32
	tokens      map[uint32]uint64
	ready       map[uint32]bool
	released    map[uint32]uint64 // release appended: partition -> token
	resend      bool              // a release append failed: append them all again

	// leader bookkeeping
	leader      bool
	windowAt    uint64
	windowSince time.Duration
	closingSeen map[string]time.Duration
	leaderOut   uint64
	leaderWait  uint64

	// member appends in flight, by purpose
	out      map[string]uint64
	outEv    map[string][]events.Event
	retry    map[string][]events.Event
	removals map[string]bool

	nextID uint64
	acts   []Action
}

// New returns a member that has not claimed yet; call Start. It panics if
// cfg.Nonce is empty or the timings do not make a valid judge.
func New(cfg Config) *Member {
	newJudge := cfg.NewJudge
	if newJudge == nil {
		newJudge = func(c liveness.JudgeConfig) (Judge, error) { return liveness.NewJudge(c) }
	}
	j, err := newJudge(cfg.Timings.JudgeConfig())
	if err != nil {
		panic("rawmember: invalid timings: " + err.Error())
	}
	if j == nil {
		panic("rawmember: Config.NewJudge returned no judge")
	}
	return &Member{
		cfg:         cfg,
		hb:          liveness.NewHeartbeater(cfg.Nonce),
		lease:       liveness.NewLease(cfg.Timings.Lease),
		judge:       j,
		tokens:      map[uint32]uint64{},
		ready:       map[uint32]bool{},
		released:    map[uint32]uint64{},
		closingSeen: map[string]time.Duration{},
		out:         map[string]uint64{},
		outEv:       map[string][]events.Event{},
		retry:       map[string][]events.Event{},
		removals:    map[string]bool{},
		forced:      map[string]forcedWait{},
		follow:      map[string]forcedWait{},
	}
}

func (m *Member) emit(a Action) uint64 {
	m.nextID++
	a.ID = m.nextID
	m.acts = append(m.acts, a)
	return a.ID
}

func (m *Member) appendLog(purpose string, evs ...events.Event) {
	m.out[purpose] = m.emit(Action{Kind: ActAppend, Events: evs})
	m.outEv[purpose] = evs
}

// Actions returns and clears the actions emitted since the last call.
func (m *Member) Actions() []Action {
	a := m.acts
	m.acts = nil
	return a
}

// Start emits the claim.
func (m *Member) Start() {
	c, err := decider.Claim(m.cfg.ID, m.cfg.Nonce, events.MaxVersion)
	if err != nil {
		panic("rawmember: " + err.Error())
	}
	c.Labels, c.Capacity = m.cfg.Labels, m.cfg.Capacity
	m.appendLog("claim", c)
}

// Identity returns the granted ID and incarnation; ok is false before the
// grant.
func (m *Member) Identity() (id string, inc uint64, ok bool) { return m.id, m.inc, m.granted }

// Nonce returns the process nonce.
func (m *Member) Nonce() string { return m.cfg.Nonce }

// Stopped returns why the member stopped, or NotStopped.
func (m *Member) Stopped() StopReason { return m.stopped }

// IsLeader reports whether the member's fold says it leads.
func (m *Member) IsLeader() bool { return m.leader && m.stopped == NotStopped }

// LeaseDeadline returns the reading until which the member may act.
func (m *Member) LeaseDeadline() time.Duration { return m.lease.Deadline() }

// LeaseValid reports whether the member may act at now.
func (m *Member) LeaseValid(now time.Duration) bool {
	if m.stopped != NotStopped || !m.granted {
		return false
	}
	return m.lease.Valid(now)
}

// Owned returns the partitions the member may act on at now: owned in its
// fold, not being moved away, covered by a valid lease. Empty once stopped,
// leaving or closing.
func (m *Member) Owned(now time.Duration) []Owned {
	if !m.LeaseValid(now) || m.closing || m.leaving {
		return nil
	}
	return slices.Clone(m.view)
}

// Revoking returns the partitions the member's fold says it must give up and
// that the application has not let go of yet.
func (m *Member) Revoking() []uint32 {
	var out []uint32
	for _, p := range m.revoking {
		if !m.ready[p] {
			out = append(out, p)
		}
	}
	return out
}

// LetGo records that the application stopped acting on partition p; the
// release is appended by the next Step.
func (m *Member) LetGo(p uint32) { m.ready[p] = true }

// SetPartitions changes what the member declares when it leads (nil IDs:
// declare nothing). The leader appends the new declaration on its next Step.
func (m *Member) SetPartitions(ids []string, weights []uint32, strategy string) {
	m.cfg.Declare = ids != nil
	m.cfg.Partitions, m.cfg.Weights = slices.Clone(ids), slices.Clone(weights)
	m.cfg.Classes, m.cfg.ClassOf = nil, nil // they were parallel to the old set
	m.declGen++
	if strategy != "" {
		m.cfg.Strategy = strategy
	}
}

// SetPlacement sets the constraint classes declared with the partition set
// (classOf nil or parallel to it; see Config.Classes). Call it after
// SetPartitions, which clears them.
func (m *Member) SetPlacement(classes []events.Class, classOf []uint32) {
	m.cfg.Classes, m.cfg.ClassOf = slices.Clone(classes), slices.Clone(classOf)
	m.declGen++
}

// Leave starts a graceful leave: the partitions are handed off, then the
// member stops with StopLeft.
func (m *Member) Leave() {
	if m.stopped != NotStopped || m.leaving || !m.granted {
		return
	}
	m.leaving = true
	m.appendLog("leave", &events.MemberLeft{Member: m.id, Incarnation: m.inc})
}

// Close closes for a restart: the member stops acting at once and appends its
// close; a new process claiming the same ID within the grace takes the
// partitions over with zero moves.
func (m *Member) Close() {
	if m.stopped != NotStopped || !m.granted {
		m.stop(StopClosed)
		return
	}
	m.closing = true
	m.appendLog("close", &events.MemberClosing{Member: m.id, Incarnation: m.inc})
}

func (m *Member) stop(r StopReason) {
	if m.stopped != NotStopped {
		return
	}
	m.stopped = r
	m.lease.Revoke()
	m.view = nil
	m.viewGen++
	if m.watching != "" {
		m.watching = ""
		m.emit(Action{Kind: ActUnwatch})
	}
}

func key(id string, inc uint64) string { return id + "/" + strconv.FormatUint(inc, 10) }

// Learned records that the log is known to hold sequence seq at reading now
// (from a publish ack, a stream info): heartbeats stop while the fold stays
// behind a known sequence for longer than the expiry.
func (m *Member) Learned(seq uint64, now time.Duration) { m.catchUp.Learned(seq, now) }

// Behind returns the oldest log sequence the member knows of that its fold
// has not applied, and the reading at which it learned of it; ok is false
// when the fold has applied everything known. While now − since exceeds
// the expiry the member does not heartbeat (and does not lead).
func (m *Member) Behind() (seq uint64, since time.Duration, ok bool) { return m.catchUp.Behind() }

// LogRewound tells the member that its fold's log went backwards and the
// state was refolded: what it learned of log sequences may name records
// that no longer exist (and would keep it from heartbeating until the log
// grows past them), and its record of what was applied may be above the
// new fold. Both are forgotten; the next Step records the fold's position.
func (m *Member) LogRewound() {
	m.catchUp, m.undecided, m.declSame = liveness.CatchUp{}, 0, [2]uint64{}
}

// Step gives the member the state its fold reached and the reading of its
// clock, and lets it act: heartbeat, judge, release, lead. Call it after the
// fold advanced and whenever a timer fires (at least every heartbeat
// interval / 4). s is only read during the call; it must not be mutated
// concurrently.
func (m *Member) Step(s *decider.State, now time.Duration) {
	m.StepLive(s, now)
	m.StepLead(s, now)
}

// StepLive is the first half of Step: observe the fold, heartbeat, judge,
// release. A driver that carries out the actions it emitted before calling
// StepLead sends the heartbeat without waiting for the leader's decision,
// which takes long over a large partition set.
func (m *Member) StepLive(s *decider.State, now time.Duration) {
	if m.stopped != NotStopped {
		return
	}
	m.observe(s, now)
	if m.stopped != NotStopped {
		return
	}
	for _, purpose := range sortedKeys(m.retry) {
		if _, busy := m.out[purpose]; !busy {
			m.appendLog(purpose, m.retry[purpose]...)
		}
		delete(m.retry, purpose)
	}
	if !m.granted {
		// A claim waiting for its ID judges the incarnation holding it.
		m.claimHeartbeat(now)
		m.judgeStep(now)
		return
	}
	m.heartbeat(now)
	m.judgeStep(now)
	m.release()
}

// StepLead is the second half of Step, after StepLive with the same s and
// now: a leader declares and decides.
func (m *Member) StepLead(s *decider.State, now time.Duration) {
	if m.stopped == NotStopped && m.granted && m.leader && !m.leaving && !m.closing {
		m.lead(s, now)
	}
}

func (m *Member) observe(s *decider.State, now time.Duration) {
	m.lastSeq = s.LastSeq
	m.catchUp.Applied(s.LastSeq)
	m.protocol = s.Protocol
	if s.NewerVersionAt != 0 {
		m.stop(StopNewerProtocol)
		return
	}
	if !m.granted {
		if mem := s.GrantedTo(m.cfg.Nonce); mem != nil {
			m.granted, m.id, m.inc = true, mem.ID, mem.Incarnation
			m.hb.Bind(mem.ID, mem.Incarnation)
		} else {
			if m.claimSeq != 0 && s.LastSeq >= m.claimSeq && s.PhaseOf(m.cfg.Nonce) == decider.MemberUnknown {
				// Granted and gone again before this fold saw it, or the
				// claim was refused: this process is no incarnation.
				m.stop(StopRemoved)
				return
			}
			m.watchHolder(s, now)
			return
		}
	}
	me := s.Incarnation(m.id, m.inc)
	if me == nil {
		switch {
		case m.leaving:
			m.stop(StopLeft)
		case m.closing:
			m.stop(StopClosed)
		default:
			m.stop(StopRemoved)
		}
		return
	}
	if me.Forced != 0 {
		// An operator force-expired this incarnation: stop acting now
		// rather than at the forced verdict; the removal waits for the
		// lease anyway.
		m.stop(StopExpired)
		return
	}
	m.leader = s.IsLeader(m.id, m.inc)

	if s.DeclVersion != m.declVersion {
		// A re-declaration may give partitions new indices: a LetGo names
		// an index of the layout it was given for, so the application
		// is asked again (Revoking) for what is still to be released.
		m.declVersion = s.DeclVersion
		clear(m.ready)
	}
	// The view is rebuilt in place; viewGen moves only if it changed.
	n, changed := 0, false
	m.revoking = m.revoking[:0]
	clear(m.tokens)
	// A leaving member releases a partition once the leader named its next
	// owner, so that it is never left without one; only when no other member
	// can take it does it release at once.
	handOffNow := false
	if me.Leaving {
		handOffNow = true
		for _, id := range s.Order {
			if o := s.Members[id]; o != me && o.Eligible() {
				handOffNow = false
				break
			}
		}
	}
	for i := range s.Owners {
		o := &s.Owners[i]
		if o.Owner != m.id || o.Inc != m.inc {
			continue
		}
		p := uint32(i)
		m.tokens[p] = o.Token
		// A partition whose release (of this very ownership) was appended
		// is given up for good, even if the fold shows it owned with no
		// move in flight (the move's target was removed meanwhile, or the
		// release's ack was lost): the release lands and ends the ownership
		// whatever happened to the move.
		if tok, gone := m.released[p]; (gone && tok == o.Token) || o.Target != "" || (me.Leaving && handOffNow) {
			m.revoking = append(m.revoking, p)
			continue
		}
		if me.Leaving {
			continue // not acted on (Owned is empty while leaving), not released yet
		}
		// Back in the view (a move was cancelled before the release was
		// appended): the application acts on it again and must let go of
		// it again before a later move may release it.
		delete(m.ready, p)
		w := Owned{Index: p, ID: s.Partitions[i], Token: o.FencingToken()}
		if n < len(m.view) {
			if m.view[n] != w {
				m.view[n], changed = w, true
			}
		} else {
			m.view, changed = append(m.view, w), true
		}
		n++
	}
	if n != len(m.view) {
		clear(m.view[n:])
		m.view, changed = m.view[:n], true
	}
	if changed {
		m.viewGen++
	}
	//parti:unordered deletes entries
	for p := range m.ready {
		if _, ok := m.tokens[p]; !ok {
			delete(m.ready, p)
		}
	}
	//parti:unordered deletes entries
	for p, tok := range m.released {
		if m.tokens[p] != tok {
			delete(m.released, p)
		}
	}

	// A leaving member keeps judging until it is gone: the ring holds the
	// leaving members too (see decider.State.Victim).
	if v, ok := s.Victim(m.id, m.inc); ok && !me.Closing && !m.closing {
		m.watchForced = v.Forced
		if v.ID != m.watching || v.Incarnation != m.watchInc {
			clear(m.forced)
			m.watching, m.watchInc, m.watchNonce = v.ID, v.Incarnation, v.Nonce
			m.judge.Watch(v.ID, v.Incarnation, now)
			m.emit(Action{Kind: ActWatch, Member: v.ID, Inc: v.Incarnation})
		}
	} else if m.watching != "" {
		m.watching, m.watchInc = "", 0
		m.judge.Unwatch()
		m.emit(Action{Kind: ActUnwatch})
	}

	if !m.leader {
		m.windowAt = 0
		clear(m.closingSeen)
		return
	}
	if s.Window && s.WindowSince != m.windowAt {
		m.windowAt, m.windowSince = s.WindowSince, now
	}
	live := map[string]bool{}
	for _, id := range s.Order {
		mm := s.Members[id]
		if mm.Closing {
			k := key(mm.ID, mm.Incarnation)
			live[k] = true
			if _, ok := m.closingSeen[k]; !ok {
				m.closingSeen[k] = now
			}
		}
	}
	//parti:unordered deletes entries
	for k := range m.closingSeen {
		if !live[k] {
			delete(m.closingSeen, k)
		}
	}
}

func (m *Member) heartbeat(now time.Duration) {
	if m.closing || m.hbOut != 0 || m.hbResolve {
		return
	}
	if m.sentAny && now-m.lastHB < m.cfg.Timings.Heartbeat && !m.hbNow {
		return
	}
	if !m.catchUp.MayHeartbeat(now, m.cfg.Timings.Expiry) {
		return
	}
	m.hbNow = false
	m.lastHB, m.sentAny = now, true
	m.hbSentAt = now
	var renews time.Duration
	if !m.lease.Revoked() {
		renews = now + m.lease.Length()
	}
	m.hbOut = m.emit(Action{
		Kind: ActHeartbeat, Member: m.id, Inc: m.inc,
		Heartbeat: &events.Heartbeat{Nonce: m.cfg.Nonce, Applied: m.lastSeq},
		Fenced:    true, Fence: m.hb.Prev(),
		Renews: renews,
	})
}

// HeartbeatAcked reports that heartbeat action id was stored at sequence seq,
// acknowledged at reading now. The lease runs from when it was sent.
func (m *Member) HeartbeatAcked(id, seq uint64, now time.Duration) {
	if id != m.hbOut {
		return
	}
	m.hbOut = 0
	if m.hbClaim {
		m.hbClaim = false
		m.claimPrev = max(m.claimPrev, seq)
		if m.stopped == NotStopped {
			m.judge.OwnAck(m.hbSentAt, now)
		}
		return
	}
	if m.stopped != NotStopped {
		return
	}
	m.hb.Acked(seq)
	m.lease.Acked(m.hbSentAt)
	m.judge.OwnAck(m.hbSentAt, now)
}

// HeartbeatFailed reports that heartbeat action id failed at reading now. A
// fence conflict or a timeout (unknown outcome) needs the subject's last
// message: the member emits ActReadLast and waits for HeartbeatResolved. Any
// other failure (no connection) just counts as a gap. A driver that can tell
// a fence conflict from a timeout reports the conflict with
// [Member.HeartbeatRefused] instead.
func (m *Member) HeartbeatFailed(id uint64, now time.Duration, conflictOrTimeout bool) {
	if id != m.hbOut {
		return
	}
	m.judge.OwnFailure(now)
	m.heartbeatNotAcked(now, conflictOrTimeout, false)
}

// HeartbeatRefused reports that heartbeat action id was refused by its fence
// (JetStream error 10071 only) at reading now: someone else wrote on the
// subject. The member reads the subject's last message (ActReadLast, reported
// with HeartbeatResolved). It is not counted as a gap in the judge's own
// heartbeats. A driver that cannot tell 10071 from 10164 (a proposal in
// flight during a stream-leader election, which must count as a gap) reports
// both with [Member.HeartbeatFailed], as the runtime and the simulator do.
func (m *Member) HeartbeatRefused(id uint64, now time.Duration) {
	if id != m.hbOut {
		return
	}
	m.heartbeatNotAcked(now, true, true)
}

func (m *Member) heartbeatNotAcked(now time.Duration, read, refused bool) {
	m.hbOut = 0
	claim := m.hbClaim
	m.hbClaim = false
	if !read || m.stopped != NotStopped {
		return
	}
	m.hbResolve = true
	m.resClaim = claim
	m.refused, m.refusedAt = refused, now
	m.requestOwnRead()
}

// requestOwnRead reads the own (or the claim) subject's last message, now if
// no other read is outstanding, else once it is reported.
func (m *Member) requestOwnRead() {
	if m.readOut != readNone {
		m.ownReadWanted = true
		return
	}
	m.ownReadWanted = false
	m.readOut = readOwn
	if m.resClaim {
		m.emit(Action{Kind: ActReadLast, Member: m.claimID, Inc: m.claimInc, Fence: m.claimPrev})
		return
	}
	m.emit(Action{Kind: ActReadLast, Member: m.id, Inc: m.inc, Fence: m.hb.Prev()})
}

// requestVictimRead reads the watched victim's subject after a refused
// verdict, now if no other read is outstanding, else once it is reported.
func (m *Member) requestVictimRead() {
	if m.readOut != readNone {
		m.victimReadWanted = true
		return
	}
	m.victimReadWanted = false
	if m.watching == "" {
		return
	}
	m.readOut, m.readFor = readVictim, key(m.watching, m.watchInc)
	m.emit(Action{Kind: ActReadLast, Member: m.watching, Inc: m.watchInc})
}

// HeartbeatResolved reports the last message of the heartbeat subject the
// member's outstanding ActReadLast named (or that reading it failed: ok
// false). For the member's own subject, after a refused or timed-out
// heartbeat, it settles the heartbeat's fence (see
// [liveness.Heartbeater.Resolve]): a verdict naming this incarnation stops
// the member; anything else is adopted as the fence and the member
// heartbeats again at once. For a watched victim's subject, after a refused
// verdict, the judge fences its next verdict on what was read.
func (m *Member) HeartbeatResolved(last liveness.LastMessage, ok bool) {
	kind := m.readOut
	m.readOut = readNone
	defer func() {
		switch {
		case m.ownReadWanted:
			m.requestOwnRead()
		case m.victimReadWanted:
			m.requestVictimRead()
		}
	}()
	if kind == readVictim {
		m.victimResolved(last, ok)
		return
	}
	m.hbResolve = false
	if !ok && !m.refused {
		// A timeout whose read failed too: already a gap (HeartbeatFailed).
	} else if !ok {
		m.judge.OwnFailure(m.refusedAt)
	}
	m.refused = false
	if m.resClaim {
		// Whatever the claim subject's last message, fence on it.
		m.resClaim = false
		if ok {
			m.claimPrev = last.Seq
			if last.Empty {
				m.claimPrev = 0
			} else {
				m.hbNow = true
			}
		}
		return
	}
	if !ok || m.stopped != NotStopped {
		return
	}
	out := m.hb.Resolve(last)
	switch {
	case out.Stop():
		m.stop(StopExpired)
	case out.Kind == liveness.Adopt:
		if out.Junk {
			m.junk++
		}
		m.hbNow = true
	}
}

// victimResolved takes the read of the victim's subject after a refused
// verdict: the next verdict is fenced on the sequence read (0 for an empty
// subject), and a verdict against the victim found there is followed by the
// removal.
func (m *Member) victimResolved(last liveness.LastMessage, ok bool) {
	k := m.readFor
	m.readFor = ""
	if m.verdictFor == k {
		m.verdictFor = "" // judge again: the count goes on
	}
	if !ok || m.stopped != NotStopped || k != key(m.watching, m.watchInc) {
		return
	}
	if last.Empty {
		m.judge.Refence(0)
		return
	}
	m.judge.Refence(last.Seq)
	if !(last.IsVerdict && last.VerdictMember == m.watching && last.VerdictIncarnation == m.watchInc) {
		// The victim's heartbeat, or anything else: a read shows only the
		// last message, and the victim may have heartbeated between the
		// judge's last sighting and it (the cluster chaos test found a
		// live victim's heartbeat hidden under junk that way). The count
		// restarts, at the next Step's reading (later than any sighting,
		// so never early): fencing the next verdict on what was read
		// without a restart could land it on a live victim whose lease
		// still runs.
		m.sighted = last.Seq
		return
	}
	{
		if last.VerdictForced != 0 {
			v := &events.ExpiryVerdict{Member: m.watching, Incarnation: m.watchInc, Forced: last.VerdictForced}
			m.waitForced(k, last.Seq, v, 0, false, false)
			return
		}
		m.appendRemoval(k, last.Seq, nil, false)
	}
}

// JunkSeen returns how many messages the member found on its own or its
// victim's heartbeat subject that were neither its own heartbeats, nor the
// victim's fenced heartbeats, nor a verdict against the incarnation the
// subject names: garbage, records of another type or version, copies of old
// records, other processes' heartbeats. The driver logs and counts them.
func (m *Member) JunkSeen() uint64 { return m.junk }

// JudgeDueAt returns the reading at which the verdict against the watched
// victim becomes due if nothing changes (see [liveness.Judge.DueAt]); ok is
// false when none is counting. A driver stepping on a timer wakes then too:
// stepping only on its timer made an expiry up to one timer period late.
func (m *Member) JudgeDueAt() (at time.Duration, ok bool) {
	if m.stopped != NotStopped || m.watching == "" || m.verdictOut != 0 {
		return 0, false
	}
	return m.judge.DueAt()
}

// followStep appends the removal for another judge's verdict once
// followDelay has passed since this member saw it and the fold still shows
// the victim (the member still watches it); a removal that was folded meanwhile
// moved the watch on, and the entry is dropped.
func (m *Member) followStep(now time.Duration) {
	for _, k := range sortedKeys(m.follow) {
		w := m.follow[k]
		switch {
		case m.removals[k] || m.watching == "" || k != key(m.watching, m.watchInc):
			delete(m.follow, k)
		case !w.started:
			w.at, w.started = now, true
			m.follow[k] = w
		case now-w.at > followDelay(m.cfg.Timings):
			m.appendRemoval(k, w.seq, w.v, true)
		}
	}
}

func (m *Member) judgeStep(now time.Duration) {
	m.followStep(now)
	if m.watching == "" || m.verdictOut != 0 || m.readOut == readVictim || m.victimReadWanted {
		return
	}
	k := key(m.watching, m.watchInc)
	if m.sighted != 0 {
		m.judge.ObserveVictim(m.sighted, now)
		m.sighted = 0
	}
	if w, ok := m.forced[k]; ok {
		if !w.started {
			w.at, w.started = now, true
			m.forced[k] = w
		}
		if now-w.at > m.cfg.Timings.Expiry {
			m.appendRemoval(k, w.seq, w.v, w.own)
		}
		return
	}
	if _, seen := m.follow[k]; seen || m.verdictFor == k || m.removals[k] {
		// Another judge's verdict against the victim is on its subject
		// (a restart's waiting claim and the ring judge both judge it):
		// a second verdict, fenced on the first one's sequence, would be
		// accepted, and each would be followed by its own removal.
		return
	}
	due, span, fence := m.judge.Due(now)
	if m.watchForced != 0 {
		// An operator's force-expire: the verdict goes now, fenced like
		// any other (a live victim learns it from its next heartbeat);
		// the removal waits until its lease can no longer be valid.
		due, span = true, 0
	}
	if !due {
		return
	}
	m.verdictFor = k
	m.verdict = &events.ExpiryVerdict{
		Member: m.watching, Incarnation: m.watchInc, Judge: m.judgeName(), JudgeInc: m.inc,
		LastSeen: fence, SpanMillis: span.Milliseconds(), Forced: m.watchForced,
	}
	m.verdictOut = m.emit(Action{
		Kind: ActVerdict, Member: m.watching, Inc: m.watchInc, Fenced: true, Fence: fence,
		Verdict: m.verdict,
	})
}

// VerdictDone reports verdict action id: stored at seq (err nil), refused
// because the subject's last sequence is not the fence (ErrConflict), or
// failed. A refused verdict re-reads the subject (ActReadLast, reported with
// HeartbeatResolved) and the next one is fenced on what was read: never on a
// guess.
func (m *Member) VerdictDone(id, seq uint64, err error) {
	if id != m.verdictOut {
		return
	}
	m.verdictOut = 0
	v := m.verdictFor
	if err != nil {
		if errors.Is(err, ErrConflict) && v == key(m.watching, m.watchInc) {
			m.requestVictimRead() // verdictFor is cleared when it is reported
			return
		}
		m.verdictFor = "" // judge again: the count goes on
		return
	}
	if m.verdict != nil && m.verdict.Forced != 0 {
		m.waitForced(v, seq, m.verdict, 0, false, true)
		return
	}
	m.appendRemoval(v, seq, m.verdict, true)
}

// waitForced starts the wait that follows a forced verdict at seq against
// victim k, measured from reading at (or from the next Step when !started),
// unless one is already running; own says this member appended the verdict.
func (m *Member) waitForced(k string, seq uint64, v *events.ExpiryVerdict, at time.Duration, started, own bool) {
	if w, ok := m.forced[k]; ok || m.removals[k] {
		if ok && own && !w.own {
			w.own = true
			m.forced[k] = w
		}
		return
	}
	m.forced[k] = forcedWait{started: started, at: at, seq: seq, v: v, own: own}
}

// followDelay is how long a judge that saw another judge's verdict waits,
// on its own clock, for that judge's removal to be folded before it appends
// the removal itself (the verdict's judge may have crashed after its
// verdict): a heartbeat interval plus the ack budget, the time an append and
// its fold take on a healthy connection.
func followDelay(t liveness.Timings) time.Duration { return t.Heartbeat + t.AckBudget }

// appendRemoval appends the removal that follows the verdict at verdictSeq,
// naming the verdict's judge and the span it measured: at once for a verdict
// this member appended (own), and only after followDelay, if the fold still
// shows the victim then, for another judge's (see followStep).
func (m *Member) appendRemoval(k string, verdictSeq uint64, v *events.ExpiryVerdict, own bool) {
	if m.removals[k] || m.stopped != NotStopped {
		return
	}
	if !own {
		if _, ok := m.follow[k]; !ok {
			m.follow[k] = forcedWait{seq: verdictSeq, v: v}
		}
		return
	}
	delete(m.follow, k)
	m.removals[k] = true
	id, incs, _ := cut(k)
	inc, _ := strconv.ParseUint(incs, 10, 64)
	ev := &events.MemberRemoved{
		Member: id, Incarnation: inc, Reason: events.ReasonExpired,
		VerdictSeq: verdictSeq, Judge: m.judgeName(),
	}
	if v != nil && v.Member == id && v.Incarnation == inc {
		if v.Judge != "" {
			ev.Judge = v.Judge
		}
		ev.SpanMillis = v.SpanMillis
		if v.Forced != 0 {
			ev.Reason = events.ReasonForced
		}
	}
	m.appendLog("remove-"+k, ev)
}

// judgeName names the judge in verdicts and removals: the member ID, or,
// for a claim still waiting, the ID it claims (with incarnation 0).
func (m *Member) judgeName() string {
	if m.granted {
		return m.id
	}
	return m.claimID
}

// ClaimIncarnation returns the incarnation that names the claim subject of a
// claim appended at log sequence claimSeq: 2^63 + claimSeq, never granted to
// an incarnation (those count up from 1).
func ClaimIncarnation(claimSeq uint64) uint64 { return 1<<63 | claimSeq }

// watchHolder makes a process whose claim waits for its ID judge the
// incarnation holding that ID. Without it a group whose incarnations are all
// dead (a lone member that crashed, a whole fleet restarted at once with
// stable IDs) would wait forever: every restarted process's claim waits for
// an old incarnation to be removed, and no live member is left to judge it.
// Every waiting claimant judges (the first to claim may have crashed too),
// like any ring judge (whoever judges, the fence decides), counting only
// while its own heartbeats are acknowledged without a gap: it heartbeats on
// its claim subject (the ID with ClaimIncarnation of its claim), which
// carries no lease and no identity.
func (m *Member) watchHolder(s *decider.State, now time.Duration) {
	var holder *decider.Member
	m.claimID = ""
	for _, c := range s.Pending {
		if c.Nonce != m.cfg.Nonce {
			continue
		}
		if h := s.Members[c.ID]; h != nil && !h.Closing {
			holder, m.claimID, m.claimInc = h, c.ID, ClaimIncarnation(c.Seq)
		}
		break
	}
	if holder == nil {
		if m.watching != "" {
			m.watching, m.watchInc = "", 0
			m.judge.Unwatch()
			m.emit(Action{Kind: ActUnwatch})
		}
		return
	}
	m.watchForced = holder.Forced
	if holder.ID != m.watching || holder.Incarnation != m.watchInc {
		clear(m.forced)
		m.watching, m.watchInc, m.watchNonce = holder.ID, holder.Incarnation, holder.Nonce
		m.judge.Watch(holder.ID, holder.Incarnation, now)
		m.emit(Action{Kind: ActWatch, Member: holder.ID, Inc: holder.Incarnation})
	}
}

// claimHeartbeat sends the waiting claimant's heartbeats, the evidence of its
// own connection the judge's no-gap rule needs.
func (m *Member) claimHeartbeat(now time.Duration) {
	if m.claimID == "" || m.hbOut != 0 || m.hbResolve {
		return
	}
	if m.claimAny && now-m.claimLast < m.cfg.Timings.Heartbeat && !m.hbNow {
		return
	}
	if !m.catchUp.MayHeartbeat(now, m.cfg.Timings.Expiry) {
		return
	}
	m.hbNow = false
	m.claimLast, m.claimAny = now, true
	m.hbSentAt = now
	m.hbClaim = true
	m.hbOut = m.emit(Action{
		Kind: ActHeartbeat, Member: m.claimID, Inc: m.claimInc,
		Heartbeat: &events.Heartbeat{Nonce: m.cfg.Nonce, Applied: m.lastSeq},
		Fenced:    true, Fence: m.claimPrev,
	})
}

func cut(k string) (string, string, bool) {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == '/' {
			return k[:i], k[i+1:], true
		}
	}
	return k, "", false
}

// VictimMessage reports a fenced heartbeat of the watched victim's own
// incarnation and nonce (verdict nil) or a verdict against it, seen at
// reading now. It is [Member.VictimRecord] for a driver that has already
// classified the message; one that has not uses VictimRecord.
func (m *Member) VictimMessage(member string, inc, seq uint64, verdict *events.ExpiryVerdict, now time.Duration) {
	msg := liveness.LastMessage{Seq: seq, Nonce: m.watchNonce, Fenced: true}
	if verdict != nil {
		msg = liveness.LastMessage{Seq: seq}
	}
	m.VictimRecord(member, inc, msg, verdict, now)
}

// VictimRecord reports a message the watch of incarnation inc of member's
// heartbeat subject delivered, seen at reading now, whatever it holds: msg
// describes it, and verdict is the verdict when it is one (of a version this
// build speaks). It reports whether the message was junk, for the driver to
// log and count.
//
//   - A heartbeat carrying the victim's nonce, stored with its fence header
//     (msg.Fenced), restarts the judge's count from now and moves its
//     fence. now must be the member's own reading when its driver received
//     the message (DESIGN rule 2), never a time the message carries.
//   - A verdict naming the victim moves the fence, and the removal follows.
//   - Anything else — garbage, a record of another type or version, a raw
//     copy of an old heartbeat, another process's heartbeat, a verdict naming
//     another incarnation — is junk: it moves the verdict's fence (a verdict
//     is fenced on the subject's last sequence, whatever that holds) and
//     leaves the count alone.
func (m *Member) VictimRecord(member string, inc uint64, msg liveness.LastMessage, verdict *events.ExpiryVerdict, now time.Duration) (junk bool) {
	if m.stopped != NotStopped || member != m.watching || inc != m.watchInc || msg.Empty || msg.Seq == 0 {
		return false
	}
	switch {
	case verdict != nil && verdict.Member == member && verdict.Incarnation == inc:
		m.judge.ObserveOther(msg.Seq)
		if verdict.Forced != 0 {
			// An operator's force-expire: the victim may still be acting
			// until its lease runs out; count the expiry from now.
			m.waitForced(key(member, inc), msg.Seq, verdict, now, true, false)
			return false
		}
		m.appendRemoval(key(member, inc), msg.Seq, verdict, false)
		return false
	case verdict == nil && !msg.Garbage && !msg.IsVerdict && msg.Fenced && m.watchNonce != "" && msg.Nonce == m.watchNonce:
		m.judge.ObserveVictim(msg.Seq, now)
		return false
	}
	m.judge.ObserveOther(msg.Seq)
	m.junk++
	return true
}

func (m *Member) release() {
	var rel []events.Released
	for _, p := range m.revoking {
		tok := m.tokens[p]
		if !m.ready[p] {
			continue
		}
		if rt, ok := m.released[p]; ok && rt == tok && !m.resend {
			continue
		}
		rel = append(rel, events.Released{Partition: p, Token: tok})
	}
	m.resend = false
	if len(rel) == 0 {
		return
	}
	for _, r := range rel {
		m.released[r.Partition] = r.Token
	}
	// Each release has its own purpose, so that the outcome of one in flight
	// is not lost when the next is appended. A large hand-off (a leave with
	// 100,000 partitions) is cut into events that each stay well under the
	// server's payload limit.
	for len(rel) > 0 {
		n := min(len(rel), MaxReleasesPerEvent)
		m.appendLog("release#"+strconv.FormatUint(m.nextID+1, 10), &events.PartitionsReleased{Member: m.id, Incarnation: m.inc, Released: rel[:n]})
		rel = rel[n:]
	}
}

// MaxReleasesPerEvent bounds the releases of one PartitionsReleased event
// (about 30 bytes each when encoded: a few hundred KiB, under the server's
// default 1 MiB payload limit).
const MaxReleasesPerEvent = 10000

// Done reports the outcome of append action id: stored with the last event at
// sequence seq, or failed with err (ErrConflict for a fence conflict).
func (m *Member) Done(id, seq uint64, err error, now time.Duration) {
	if err == nil && seq > 0 {
		m.catchUp.Learned(seq, now)
	}
	if id == m.leaderOut {
		m.leaderOut = 0
		if err == nil {
			m.leaderWait = seq
		}
		return
	}
	//parti:unordered action IDs are unique: at most one purpose matches
	for purpose, aid := range m.out {
		if aid != id {
			continue
		}
		evs := m.outEv[purpose]
		delete(m.out, purpose)
		delete(m.outEv, purpose)
		if err != nil {
			if strings.HasPrefix(purpose, "release#") {
				// It may have landed (a lost ack) or not: the released
				// partitions stay given up and the next Step appends
				// every release still unconfirmed again (the fold
				// ignores a release whose token no longer matches).
				m.resend = true
			} else {
				m.retry[purpose] = evs // unfenced and idempotent: append again
			}
		} else if purpose == "claim" {
			m.claimSeq = seq
		}
		return
	}
}

// lead does the leader's duties: declare, close windows, end graces, decide.
// One leader append is in flight at a time, and the next waits until the fold
// has applied the previous one.
func (m *Member) lead(s *decider.State, now time.Duration) {
	if m.leaderOut != 0 || s.LastSeq < m.leaderWait {
		return
	}
	if _, _, behind := m.catchUp.Behind(); behind {
		return // decide only on the newest log known
	}
	fence := func(evs ...events.Event) {
		m.leaderOut = m.emit(Action{Kind: ActAppend, Events: evs, Fenced: true, Fence: s.LastSeq})
	}
	// Checking the declaration validates every partition ID: skip it while
	// neither the folded declaration nor the config changed since it was
	// found equal.
	if m.cfg.Declare && (s.DeclVersion == 0 || m.declSame != [2]uint64{s.DeclVersion, m.declGen}) {
		ds, err := decider.DeclarePlaced(s, m.id, m.inc, m.cfg.Partitions, m.cfg.Weights, m.cfg.Classes, m.cfg.ClassOf, m.cfg.Strategy, m.cfg.MaxIDsPerPart)
		if err == nil && ds != nil {
			evs := make([]events.Event, len(ds))
			for i, d := range ds {
				evs[i] = d
			}
			fence(evs...)
			return
		}
		if err == nil && s.DeclVersion > 0 {
			m.declSame = [2]uint64{s.DeclVersion, m.declGen}
		}
	}
	if v, ok := m.raiseTo(s); ok {
		if e, err := decider.SetProtocol(s, m.id, m.inc, v); err == nil {
			fence(e)
			return
		}
	}
	if s.Window {
		live := len(s.LiveMembers())
		early := m.cfg.ExpectedMembers > 0 && live >= m.cfg.ExpectedMembers
		if early || now-m.windowSince >= m.cfg.Window {
			if w, err := decider.CloseWindow(s, m.id, m.inc, (now - m.windowSince).Milliseconds()); err == nil {
				fence(w)
				return
			}
		}
	}
	for _, k := range sortedKeys(m.closingSeen) {
		since := m.closingSeen[k]
		if now-since < m.cfg.Grace {
			continue
		}
		id, incs, _ := cut(k)
		inc, _ := strconv.ParseUint(incs, 10, 64)
		if g, err := decider.EndGrace(s, m.id, m.inc, id, inc, (now - since).Milliseconds()); err == nil {
			fence(g)
			return
		}
	}
	if m.undecided != 0 && m.undecided == s.LastSeq {
		return // Decide depends on the fold alone, which has not moved
	}
	d, err := decider.Decide(s, m.id, m.inc)
	if err != nil || d == nil {
		if err == nil {
			m.undecided = s.LastSeq
		}
		return
	}
	parts := decider.SplitDecision(d, cmpOr(m.cfg.MaxRangesPerPart, DefaultMaxRangesPerPart))
	evs := make([]events.Event, len(parts))
	for i, p := range parts {
		evs[i] = p
	}
	fence(evs...)
}

// raiseTo returns the protocol version the leader raises the group to, if
// any: the highest every live member speaks, at most this build's (and
// PinProtocol, when set), and above the group's. Never down.
func (m *Member) raiseTo(s *decider.State) (uint16, bool) {
	v := events.MaxVersion
	if m.cfg.PinProtocol != 0 {
		v = min(v, m.cfg.PinProtocol)
	}
	live := s.LiveMembers()
	if len(live) == 0 {
		return 0, false
	}
	for _, mm := range live {
		v = min(v, max(mm.MaxProtocol, 1))
	}
	return v, v > max(s.Protocol, 1)
}

// WriteVersion returns the protocol version every envelope this member
// appends must carry: the group's folded version (1 until one was set),
// never above what this build speaks.
func (m *Member) WriteVersion() uint16 { return min(max(m.protocol, 1), events.MaxVersion) }

func cmpOr(a, b int) int {
	if a > 0 {
		return a
	}
	return b
}

func sortedKeys[V any](mp map[string]V) []string {
	ks := make([]string, 0, len(mp))
	//parti:unordered collects the keys, sorted below
	for k := range mp {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
