package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
	"github.com/parti-io/parti/rawmember"
)

// universeSize is the number of partition IDs a declared set draws from.
const universeSize = 100

// universe is every partition ID a declared set may contain; pids index it.
var universe, universeIndex = func() ([]string, map[string]int) {
	ids := make([]string, universeSize)
	idx := make(map[string]int, len(ids))
	for i := range ids {
		ids[i] = fmt.Sprintf("p-%03d", i)
		idx[ids[i]] = i
	}
	return ids, idx
}()

var (
	errTimeout = errors.New("sim: timeout")
	errNoConn  = errors.New("sim: no connection")
)

type reqKind uint8

const (
	reqAppend reqKind = iota + 1
	reqHeartbeat
	reqVerdict
	reqReadLast
	reqWatch
	reqInfo
)

func (k reqKind) String() string {
	return [...]string{"?", "append", "heartbeat", "verdict", "read-last", "watch", "info"}[k]
}

// request is one call a member's driver makes to the stream.
type request struct {
	ord      uint64
	p        *proc
	kind     reqKind
	actID    uint64
	subject  string
	evs      []events.Event
	hb       *events.Heartbeat
	hbSent   time.Duration // the member's reading when it sent hb
	verdict  *events.ExpiryVerdict
	fenced   bool
	fence    uint64
	sent     time.Duration
	arrive   time.Duration
	deadline time.Duration
	done     bool // the driver reported an outcome
	isClose  bool
	isLeader bool // a fenced leader append
	stalled  bool // met a stall
}

type itemKind uint8

const (
	itemAnswer itemKind = iota + 1
	itemTimeout
	itemNoConn
	itemVictim
)

// item is something that reaches a member's driver at time due.
type item struct {
	due  time.Duration
	ord  uint64
	kind itemKind
	req  *request
	seq  uint64
	err  error
	last liveness.LastMessage
	msg  *hbMessage
}

// act is the simulated application's activity on one partition.
type act struct {
	on     bool
	token  events.Token
	stopAt time.Duration // finishing after a revoke: stops at this real time
}

// proc is one member process: its rawmember, its own fold, its clock, its
// driver's inbox and its application.
type proc struct {
	n     int
	id    string // the configured ID
	nonce string
	m     *rawmember.Member
	st    *decider.State

	cursor  int           // next log index to fold
	lag     time.Duration // tail lag
	lagTill time.Duration // a fold stall (large lag) lasts until then
	off     time.Duration
	rate    float64

	dead        bool
	pausedUntil time.Duration
	isoUntil    time.Duration // publish path down
	tailUntil   time.Duration // tail down
	inbox       []*item

	belief  []rawmember.Owned
	acting  []act // by pid
	ho      *rawmember.Handoff
	calls   []rawmember.Call // handler calls handed to the application, not made yet
	healthy bool

	watchSubj string
	watchLive bool

	closing   bool
	closeAt   time.Duration
	exitOnAck bool
	leaving   bool
	nextInfo  time.Duration
	lastRun   time.Duration // the last step it ran (was not paused)
	stDirty   bool
	started   time.Duration
}

func (p *proc) now(t time.Duration) time.Duration {
	return p.off + time.Duration(float64(t)*p.rate)
}

func (p *proc) name() string {
	if id, inc, ok := p.m.Identity(); ok {
		return fmt.Sprintf("%s/%d#%d", id, inc, p.n)
	}
	return fmt.Sprintf("%s/?#%d", p.id, p.n)
}

type phase uint8

const (
	phaseCalm phase = iota + 1
	phaseChaos
	phaseDrain
)

// pendingStart is a process start scheduled for later (a restart or a join).
type pendingStart struct {
	at time.Duration
	id string
}

// graceTrack follows a close-for-restart through the authoritative fold.
type graceTrack struct {
	id      string
	inc     uint64
	seq     uint64
	stable  bool
	granted bool
}

type world struct {
	opt  Options
	rng  *rand.Rand
	T    time.Duration
	step int
	st   *stream
	subj events.Subjects

	auth      *decider.State
	authOut   []decider.OutcomeKind
	authDirty bool
	authHash  map[uint64]string
	byNonce   map[string]*proc

	procs    []*proc
	arrivals []*request // min-heap by (arrive, ord)
	held     []*request // held through a stall, in arrival order
	ord      uint64

	partitions []string
	nextID     int
	pending    []pendingStart

	ph         phase
	phaseEnd   time.Duration
	calmStart  time.Duration
	quietBound time.Duration

	store     []events.Token // the token-checking store, by pid
	storeSeen []bool
	graces    []graceTrack
	snap      []byte
	snapHash  string

	owner    []int32 // scratch for the overlap checks, by pid
	appOwner []int32

	trace     []string
	traceNext int
	violation *Violation
	stats     Stats
	adv       *proc // the adversary's stand-in for requests (adversary.go)
}

func newWorld(opt Options) *world {
	w := &world{
		opt:       opt,
		rng:       rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15)),
		st:        newStream(opt.TTL),
		subj:      events.Subjects{Group: "g", Prefix: "parti"},
		auth:      decider.New(),
		authHash:  map[uint64]string{},
		byNonce:   map[string]*proc{},
		store:     make([]events.Token, len(universe)),
		storeSeen: make([]bool, len(universe)),
		owner:     make([]int32, len(universe)),
		appOwner:  make([]int32, len(universe)),
	}
	n := opt.MinPartitions + w.rng.IntN(opt.MaxPartitions-opt.MinPartitions+1)
	w.partitions = slices.Clone(universe[:n])
	members := opt.MinMembers + w.rng.IntN(opt.MaxMembers-opt.MinMembers+1)
	for range members {
		w.pending = append(w.pending, pendingStart{at: w.dur(0, 500*time.Millisecond), id: w.newID()})
	}
	w.ph = phaseCalm
	w.calmStart = 0
	w.quietBound = w.bound()
	w.phaseEnd = w.quietBound + w.dur(time.Second, 6*time.Second)
	return w
}

func (w *world) newID() string {
	id := fmt.Sprintf("w%d", w.nextID)
	w.nextID++
	return id
}

// dur returns a uniform duration in [lo, hi].
func (w *world) dur(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(w.rng.Int64N(int64(hi-lo)+1))
}

func (w *world) chance(p float64) bool { return w.rng.Float64() < p }

// rate converts a rate per second into a probability for one step of dt.
func (w *world) perStep(rate float64, dt time.Duration) bool {
	return w.chance(rate * dt.Seconds())
}

func (w *world) tracef(format string, args ...any) {
	if w.opt.Trace <= 0 {
		return
	}
	s := fmt.Sprintf("%6d %9.3fs ", w.step, w.T.Seconds()) + fmt.Sprintf(format, args...)
	if len(w.trace) < w.opt.Trace {
		w.trace = append(w.trace, s)
		return
	}
	w.trace[w.traceNext] = s
	w.traceNext = (w.traceNext + 1) % len(w.trace)
}

func (w *world) traceLines() []string {
	if len(w.trace) < w.opt.Trace {
		return slices.Clone(w.trace)
	}
	return append(slices.Clone(w.trace[w.traceNext:]), w.trace[:w.traceNext]...)
}

func (w *world) fail(k Kind, format string, args ...any) {
	if w.violation != nil {
		return
	}
	w.violation = &Violation{Kind: k, Step: w.step, At: w.T, Msg: fmt.Sprintf(format, args...)}
	w.tracef("VIOLATION %v: %s", k, w.violation.Msg)
}

// Run runs one simulation and returns its result; with opt.Trace > 0 the
// result carries the last events before the end (or the violation).
func Run(opt Options) (res Result) {
	w := newWorld(opt)
	defer func() {
		if r := recover(); r != nil {
			w.violation = &Violation{Kind: KindPanic, Step: w.step, At: w.T, Msg: fmt.Sprint(r)}
			res = w.result()
			res.Trace = append(res.Trace, fmt.Sprintf("panic: %v\n%s", r, debug.Stack()))
		}
	}()
	w.run()
	return w.result()
}

func (w *world) result() Result {
	w.stats.Steps = w.step
	w.stats.SimTime = w.T
	w.stats.LogRecords = len(w.st.log)
	res := Result{Seed: w.opt.Seed, Violation: w.violation, Stats: w.stats, Trace: w.traceLines()}
	if w.violation != nil {
		res.State = w.describe()
	}
	return res
}

func (w *world) run() {
	for w.step = 1; w.step <= w.opt.Steps; w.step++ {
		dt := w.dur(w.opt.MinStep, w.opt.MaxStep)
		w.T += dt
		w.phaseStep(dt)
		w.adversary(dt)
		w.streamStep()
		for i := 0; i < len(w.procs); i++ {
			w.procStep(w.procs[i], dt)
		}
		w.check()
		if w.violation != nil {
			return
		}
	}
	w.step = w.opt.Steps
	w.refold()
}

// --- faults and phases ---------------------------------------------------

func (w *world) alive() []*proc {
	var out []*proc
	for _, p := range w.procs {
		if !p.dead {
			out = append(out, p)
		}
	}
	return out
}

func (w *world) pick(ps []*proc) *proc {
	if len(ps) == 0 {
		return nil
	}
	return ps[w.rng.IntN(len(ps))]
}

// granted returns the running (not paused) processes whose member was
// granted and that are neither closing nor leaving.
func (w *world) granted() []*proc {
	var out []*proc
	for _, p := range w.procs {
		if _, _, ok := p.m.Identity(); ok && !p.dead && !p.closing && !p.leaving && p.pausedUntil <= w.T && p.m.Stopped() == rawmember.NotStopped {
			out = append(out, p)
		}
	}
	return out
}

func (w *world) phaseStep(dt time.Duration) {
	// Scheduled starts: restarts and joins (and, in the first calm phase,
	// the initial members).
	for i := 0; i < len(w.pending); {
		if ps := w.pending[i]; ps.at <= w.T {
			w.pending = slices.Delete(w.pending, i, i+1)
			w.start(ps.id)
			continue
		}
		i++
	}
	switch w.ph {
	case phaseChaos:
		if w.T >= w.phaseEnd {
			w.ph = phaseDrain
			w.tracef("phase drain")
			return
		}
		w.inject(dt)
	case phaseDrain:
		if w.faultsOngoing() {
			return
		}
		// Starts scheduled by the chaos happen now; from here on nothing
		// is injected.
		for _, ps := range w.pending {
			w.start(ps.id)
		}
		w.pending = nil
		// Keep a group to check: at least two processes that stay.
		staying := 0
		for _, p := range w.alive() {
			if !p.leaving && !p.closing {
				staying++
			}
		}
		for ; staying < 2; staying++ {
			w.start(w.newID())
		}
		w.ph = phaseCalm
		w.calmStart = w.T
		w.quietBound = w.bound()
		w.phaseEnd = w.T + w.quietBound + w.dur(time.Second, 6*time.Second)
		w.stats.CalmPhases++
		w.tracef("phase calm, liveness checked from %v", w.T+w.quietBound)
	case phaseCalm:
		if w.T >= w.phaseEnd {
			w.ph = phaseChaos
			w.phaseEnd = w.T + w.dur(5*time.Second, 25*time.Second)
			w.tracef("phase chaos until %v", w.phaseEnd)
		}
	}
}

// faultsOngoing reports whether a pause, an isolation, a fold stall or a
// stream stall is still running.
func (w *world) faultsOngoing() bool {
	if w.st.stalled(w.T) || len(w.held) > 0 {
		return true
	}
	for _, p := range w.procs {
		if p.dead {
			continue
		}
		if p.pausedUntil > w.T || p.isoUntil > w.T || p.tailUntil > w.T || p.lagTill > w.T {
			return true
		}
	}
	return false
}

// bound is how long after the start of a quiet period every partition must
// be owned by a live member that believes it owns it: window + expiry + one
// decision round + slack, with one more expiry and round for every member
// the fold still holds that no process backs (dead members adjacent in the
// ring are expired one after the other) and the grace when a closed member
// may be waiting for its grace to end.
func (w *world) bound() time.Duration {
	t := w.opt.Timings
	round := 1500 * time.Millisecond
	slack := 2500 * time.Millisecond
	dead, closing := 0, false
	for _, id := range w.auth.Order {
		m := w.auth.Members[id]
		if m.Closing {
			closing = true
		}
		if p := w.byNonce[m.Nonce]; p == nil || p.dead {
			dead++
		}
	}
	// Hand-offs: a revoked partition is let go only once its handler
	// returned (rawmember.Handoff), and here its release lands one log
	// round trip after another (about 60 ms each in the simulated stream,
	// measured), so a leave or a rebalance right at the start of the calm
	// phase takes time in proportion to the partitions it moves.
	handoff := time.Duration(len(w.auth.Partitions)) * 60 * time.Millisecond
	b := w.opt.Window + t.Expiry + round + slack + handoff + time.Duration(dead)*(t.Expiry+round)
	if closing {
		b += w.opt.Grace
	}
	return b
}

func (w *world) inject(dt time.Duration) {
	o := w.opt
	if w.perStep(o.CrashRate, dt) {
		if p := w.pick(w.alive()); p != nil {
			w.crash(p, "crash")
			if w.chance(0.6) {
				w.pending = append(w.pending, pendingStart{at: w.T + w.dur(100*time.Millisecond, 6*time.Second), id: p.id})
			}
		}
	}
	if w.perStep(o.PauseRate, dt) {
		// A process pauses only once it ran since its last pause (two
		// pauses back to back would be one longer pause).
		if p := w.pick(w.alive()); p != nil && p.pausedUntil <= w.T && p.lastRun > p.pausedUntil {
			var d time.Duration
			switch {
			case o.LongPauses && w.chance(0.3):
				d = w.dur(o.LongPauseMin, o.LongPauseMax)
			case w.chance(0.5):
				d = w.dur(0, 300*time.Millisecond)
			default:
				d = w.dur(o.MaxPause*2/3, o.MaxPause)
			}
			p.pausedUntil = w.T + d
			p.healthy = false
			w.stats.Pauses++
			w.tracef("pause %s for %v", p.name(), d)
		}
	}
	if w.perStep(o.IsolateRate, dt) {
		if p := w.pick(w.alive()); p != nil && p.isoUntil <= w.T {
			d := w.dur(500*time.Millisecond, 6*time.Second)
			p.isoUntil = w.T + d
			p.tailUntil = p.isoUntil + w.dur(0, 2*time.Second)
			p.healthy = false
			w.stats.Isolations++
			w.tracef("isolate %s for %v (tail %v)", p.name(), d, p.tailUntil-w.T)
		}
	}
	if w.perStep(o.StallRate, dt) && !w.st.stalled(w.T) {
		d := w.dur(200*time.Millisecond, o.MaxStall)
		if o.LongOutages && w.chance(0.1) {
			d = w.dur(o.TTL+time.Second, o.TTL+8*time.Second)
		}
		w.st.stallUntil = w.T + d
		w.stats.Stalls++
		w.tracef("stream stall for %v", d)
	}
	if w.perStep(o.CloseRate, dt) {
		if p := w.pick(w.granted()); p != nil {
			p.closing, p.closeAt = true, w.T
			p.m.Close()
			w.stats.Closes++
			at := w.T + w.dur(200*time.Millisecond, 3500*time.Millisecond)
			if w.chance(0.25) {
				at = w.T + w.dur(o.Grace+time.Second, o.Grace+4*time.Second)
			}
			w.pending = append(w.pending, pendingStart{at: at, id: p.id})
			w.tracef("close %s, restart at %v", p.name(), at)
			w.flush(p)
		}
	}
	if w.perStep(o.LeaveRate, dt) {
		if p := w.pick(w.granted()); p != nil {
			p.leaving = true
			p.m.Leave()
			w.stats.Leaves++
			w.tracef("leave %s", p.name())
			if w.chance(0.5) {
				w.pending = append(w.pending, pendingStart{at: w.T + w.dur(time.Second, 10*time.Second), id: p.id})
			}
			w.flush(p)
		}
	}
	if w.perStep(o.JoinRate, dt) && len(w.alive())+len(w.pending) < o.MaxProcs {
		w.stats.Joins++
		w.start(w.newID())
	}
	if w.perStep(o.DeclareRate, dt) {
		n := o.MinPartitions + w.rng.IntN(o.MaxPartitions-o.MinPartitions+1)
		perm := w.rng.Perm(len(universe))[:n]
		slices.Sort(perm)
		ids := make([]string, n)
		for i, k := range perm {
			ids[i] = universe[k]
		}
		w.partitions = ids
		w.stats.Declarations++
		if l, ok := w.auth.Leader(); ok && w.chance(0.3) {
			if p := w.byNonce[l.Nonce]; p != nil && !p.dead {
				w.setPartitions(p.m, ids)
				w.tracef("set %d partitions on the leader %s only", n, p.name())
			}
		} else {
			for _, p := range w.alive() {
				w.setPartitions(p.m, ids)
			}
			w.tracef("set %d partitions on every member", n)
		}
	}
	if w.perStep(o.SkewRate, dt) {
		j := w.dur(0, 2*o.MaxSkewStep) - o.MaxSkewStep
		w.st.skew += j
		w.tracef("server clock steps %v", j)
	}
	w.injectZoneLoss(dt)
	if w.perStep(o.FoldStallRate, dt) {
		if p := w.pick(w.alive()); p != nil && p.lagTill <= w.T {
			d := w.dur(time.Second, 5*time.Second)
			p.lag, p.lagTill = d, w.T+d
			p.healthy = false
			w.tracef("fold stall %s for %v", p.name(), d)
		}
	}
}

// start starts a new process claiming id.
func (w *world) start(id string) {
	n := len(w.procs)
	p := &proc{
		n:        n,
		id:       id,
		nonce:    fmt.Sprintf("n%d-%d", n, w.opt.Seed),
		st:       decider.New(),
		lag:      w.dur(0, 150*time.Millisecond),
		off:      w.dur(0, 1000*time.Second),
		rate:     1 + (w.rng.Float64()*2-1)*w.opt.RateSpread,
		acting:   make([]act, len(universe)),
		ho:       rawmember.NewHandoff(),
		healthy:  true,
		started:  w.T,
		nextInfo: w.T + w.dur(0, time.Second),
		stDirty:  true,
	}
	if w.snap != nil && w.chance(0.5) {
		st, err := decider.Restore(w.snap, w.snapHash)
		if err != nil {
			w.fail(KindRefold, "restore of the snapshot: %v", err)
			return
		}
		p.st = st
		p.cursor, _ = slices.BinarySearch(w.st.logSeqs, st.LastSeq+1)
	}
	cfg := rawmember.Config{
		ID:         id,
		Nonce:      p.nonce,
		Timings:    w.opt.Timings,
		Window:     w.opt.Window,
		Grace:      w.opt.Grace,
		Declare:    true,
		Partitions: slices.Clone(w.partitions),
		JudgeRule:  w.opt.JudgeRule,
		Broken:     rawmember.Broken{JudgeClock: w.opt.Broken.JudgeClock},
	}
	w.placeConfig(&cfg) // placement mode (placement.go)
	p.m = rawmember.New(cfg)
	w.procs = append(w.procs, p)
	w.byNonce[p.nonce] = p
	p.m.Start()
	w.tracef("start %s (nonce %s, rate %.4f, from seq %d)", p.name(), p.nonce, p.rate, p.st.LastSeq)
	w.flush(p)
}

func (w *world) crash(p *proc, why string) {
	if p.dead {
		return
	}
	p.dead = true
	p.belief = nil
	clear(p.acting)
	p.inbox = nil
	p.healthy = false
	w.stats.Crashes++
	w.tracef("%s %s", why, p.name())
}

// exit ends a process that stopped (left, closed, or expired and rejoining).
func (w *world) exit(p *proc, why string) {
	if p.dead {
		return
	}
	p.dead = true
	p.belief = nil
	clear(p.acting)
	p.inbox = nil
	w.tracef("exit %s: %s", p.name(), why)
}

// --- the stream side -------------------------------------------------------

func (w *world) push(r *request) {
	h := append(w.arrivals, r)
	i := len(h) - 1
	for i > 0 {
		j := (i - 1) / 2
		if !reqLess(h[i], h[j]) {
			break
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
	w.arrivals = h
}

func reqLess(a, b *request) bool {
	if a.arrive != b.arrive {
		return a.arrive < b.arrive
	}
	return a.ord < b.ord
}

func (w *world) pop() *request {
	h := w.arrivals
	r := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = nil
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r2 := l + 1; r2 < n && reqLess(h[r2], h[l]) {
			c = r2
		}
		if !reqLess(h[c], h[i]) {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	w.arrivals = h
	return r
}

func (w *world) streamStep() {
	if len(w.held) > 0 && !w.st.stalled(w.T) {
		held := w.held
		w.held = nil
		w.tracef("stall over: %d held requests", len(held))
		for _, r := range held {
			w.process(r)
		}
	}
	for len(w.arrivals) > 0 && w.arrivals[0].arrive <= w.T {
		r := w.pop()
		if w.st.stalled(w.T) {
			r.stalled = true
			if r.kind == reqWatch || w.chance(0.5) {
				w.held = append(w.held, r)
			} else {
				w.tracef("stall drops %v of %s", r.kind, r.p.name())
			}
			continue
		}
		w.process(r)
	}
}

// netDelay is one network hop: mostly sub-millisecond to a few ms, with
// occasional spikes in chaos.
func (w *world) netDelay() time.Duration {
	if w.ph == phaseChaos && w.chance(0.02) {
		return w.dur(50*time.Millisecond, 400*time.Millisecond)
	}
	return w.dur(100*time.Microsecond, 5*time.Millisecond)
}

func (w *world) process(r *request) {
	p := r.p
	switch r.kind {
	case reqAppend:
		recs := w.st.appendLog(w.subj.Log(), r.evs, r.fenced, r.fence, w.T)
		if recs == nil {
			w.tracef("append by %s conflicts (fence %d, last %d)", p.name(), r.fence, w.st.lastLogSeq())
			w.answer(r, 0, rawmember.ErrConflict, liveness.LastMessage{})
			return
		}
		w.foldAuth(recs, r)
		w.answer(r, recs[len(recs)-1].Seq, nil, liveness.LastMessage{})
	case reqHeartbeat, reqVerdict:
		m := w.st.appendHB(r.subject, r.hb, r.verdict, r.hbSent, r.fenced, r.fence, w.T)
		if m == nil {
			w.tracef("%v by %s on %s conflicts (fence %d)", r.kind, p.name(), r.subject, r.fence)
			w.answer(r, 0, rawmember.ErrConflict, liveness.LastMessage{})
			return
		}
		if r.verdict != nil {
			w.tracef("VERDICT %d by %s on %s (fence %d)", m.seq, p.name(), r.subject, r.fence)
		}
		w.landedHB(m)
		w.answer(r, m.seq, nil, liveness.LastMessage{})
	case reqReadLast:
		w.answer(r, 0, nil, w.readFor(r))
	case reqInfo:
		w.answer(r, w.st.lastLogSeq(), nil, liveness.LastMessage{})
	case reqWatch:
		if p.dead || p.watchSubj != r.subject {
			return
		}
		p.watchLive = true
		if m := w.st.last(r.subject, w.T); m != nil {
			w.deliverVictim(p, m)
		}
	}
}

// answer sends the stream's answer back to the member, unless it is lost or
// would arrive after the client gave up (the timeout then reports).
func (w *world) answer(r *request, seq uint64, err error, last liveness.LastMessage) {
	p := r.p
	if p.dead {
		return
	}
	if w.ph == phaseChaos && w.chance(w.opt.LossProb) {
		if r.kind == reqHeartbeat || r.kind == reqReadLast {
			p.healthy = false // its heartbeats are no longer all acknowledged
		}
		w.tracef("answer to %v of %s lost", r.kind, p.name())
		return
	}
	due := w.T + w.netDelay()
	if due >= r.deadline {
		return
	}
	w.deliver(p, &item{due: due, kind: itemAnswer, req: r, seq: seq, err: err, last: last})
}

func (w *world) deliver(p *proc, it *item) {
	w.ord++
	it.ord = w.ord
	i := len(p.inbox)
	for i > 0 && (p.inbox[i-1].due > it.due || (p.inbox[i-1].due == it.due && p.inbox[i-1].ord > it.ord)) {
		i--
	}
	p.inbox = slices.Insert(p.inbox, i, it)
}

// landedHB hands a heartbeat-subject message to whoever watches the subject.
func (w *world) landedHB(m *hbMessage) {
	for _, p := range w.procs {
		if !p.dead && p.watchLive && p.watchSubj == m.subject {
			w.deliverVictim(p, m)
		}
	}
}

func (w *world) deliverVictim(p *proc, m *hbMessage) {
	w.deliver(p, &item{due: w.T + w.netDelay(), kind: itemVictim, msg: m})
}

// foldAuth folds landed records into the authoritative state and checks what
// only the authoritative fold can see: fenced leader appends apply where they
// landed, no healthy member is expired, and a restart inside the grace moves
// nothing.
func (w *world) foldAuth(recs []events.Record, r *request) {
	for _, rec := range recs {
		var removedNonce string
		stable := false
		switch e := rec.Event.(type) {
		case *events.MemberRemoved:
			if m := w.auth.Incarnation(e.Member, e.Incarnation); m != nil {
				removedNonce = m.Nonce
			}
		case *events.MemberClosing:
			stable = w.settled()
		}
		w.graceBefore(rec)
		out := decider.Apply(w.auth, rec)
		w.authOut = append(w.authOut, out.Kind)
		if w.opt.Trace > 0 {
			w.tracef("seq %d %v by %s: %v %s %s", rec.Seq, rec.Event.Type(), r.p.name(), out.Kind, out.Reason, brief(rec.Event))
		}
		if r.isLeader && out.Kind != decider.Applied && out.Kind != decider.Partial {
			w.fail(KindDecisionRejected, "fenced %v at seq %d by %s: %v (%s)", rec.Event.Type(), rec.Seq, r.p.name(), out.Kind, out.Reason)
		}
		switch e := rec.Event.(type) {
		case *events.AssignmentDecided:
			if out.Kind == decider.Applied || out.Kind == decider.Partial {
				w.stats.Decisions++
				w.graceDecision(rec.Seq, e)
			}
		case *events.MemberRemoved:
			if out.Kind == decider.Applied && removedNonce != "" {
				w.stats.Expired++
				if p := w.byNonce[removedNonce]; p != nil && p.healthy && !p.dead {
					w.fail(KindHealthyExpired, "%s was removed at seq %d (verdict %d by %s) although it was never paused, isolated or crashed and its heartbeats were acked whenever the stream was up",
						p.name(), rec.Seq, e.VerdictSeq, e.Judge)
				}
			}
		case *events.MemberClosing:
			if out.Kind == decider.Applied {
				if m := w.auth.Incarnation(e.Member, e.Incarnation); m != nil && m.Closing {
					w.graces = append(w.graces, graceTrack{id: e.Member, inc: e.Incarnation, seq: rec.Seq, stable: stable})
				}
			}
		case *events.MemberClaimed:
			w.graceClaimed(e)
		}
	}
	w.authDirty = true
}

// settled reports whether the authoritative state needs nothing: stable, no
// claim waiting, and the leader would decide nothing.
func (w *world) settled() bool {
	if w.auth.Phase() != decider.PhaseStable || len(w.auth.Pending) > 0 {
		return false
	}
	l, ok := w.auth.Leader()
	if !ok {
		return false
	}
	d, err := decider.Decide(w.auth, l.ID, l.Incarnation)
	return err == nil && d == nil
}

// graceBefore ends the tracking of restarts when anything else changes the
// group.
func (w *world) graceBefore(rec events.Record) {
	if len(w.graces) == 0 {
		return
	}
	keep := w.graces[:0]
	for _, g := range w.graces {
		other := false
		switch e := rec.Event.(type) {
		case *events.MemberClaimed:
			other = e.ID != g.id
		case *events.AssignmentDecided, *events.PartitionsReleased, *events.WindowClosed:
		default:
			other = true
		}
		if !other {
			keep = append(keep, g)
		}
	}
	w.graces = keep
}

func (w *world) graceClaimed(e *events.MemberClaimed) {
	for i := range w.graces {
		g := &w.graces[i]
		if g.granted || e.ID != g.id {
			continue
		}
		if m := w.auth.GrantedTo(e.Nonce); m != nil && m.ID == g.id {
			g.granted = true
			if g.stable {
				w.stats.GraceRestarts++
			}
			w.tracef("restart of %s inside the grace granted as %s/%d", g.id, m.ID, m.Incarnation)
		}
	}
}

func (w *world) graceDecision(seq uint64, d *events.AssignmentDecided) {
	for _, g := range w.graces {
		if !g.stable {
			continue
		}
		for _, mv := range d.Moves {
			if mv.From == g.id {
				w.fail(KindGraceMoved, "decision at seq %d moves %v from %s/%d, which closed for a restart at seq %d in a settled group (restart granted: %v) with no other change since",
					seq, mv.Parts, mv.From, mv.FromInc, g.seq, g.granted)
			}
		}
	}
}

// --- the member side -------------------------------------------------------

func (w *world) procStep(p *proc, dt time.Duration) {
	if p.dead || p.pausedUntil > w.T {
		return
	}
	p.lastRun = w.T
	// The application first finishes what it was doing when it last
	// checked (before a pause, that check is old): it writes.
	w.write(p)

	now := p.now(w.T)
	w.drain(p, now)
	if p.dead {
		return
	}
	w.fold(p)

	if w.T >= p.nextInfo && p.isoUntil <= w.T {
		p.nextInfo = w.T + time.Second
		w.send(p, &request{kind: reqInfo})
	}
	if w.ph == phaseChaos && w.chance(0.5*dt.Seconds()) && p.lagTill <= w.T {
		p.lag = w.dur(0, 150*time.Millisecond)
	}
	if p.lagTill != 0 && p.lagTill <= w.T {
		p.lagTill = 0
		p.lag = w.dur(0, 150*time.Millisecond)
	}

	p.m.Step(p.st, now)
	w.flush(p)
	if p.dead {
		return
	}
	w.app(p, now)

	switch r := p.m.Stopped(); r {
	case rawmember.NotStopped:
		if p.closing && w.T-p.closeAt > 3*time.Second {
			w.exit(p, "closed (close not acknowledged)")
		}
	case rawmember.StopLeft, rawmember.StopClosed:
		w.exit(p, r.String())
	default:
		w.checkSelfStop(p, r)
		w.exit(p, r.String())
		// The process rejoins as a new incarnation.
		w.pending = append(w.pending, pendingStart{at: w.T + w.dur(50*time.Millisecond, time.Second), id: p.id})
	}
}

// drain hands the driver's inbox to the member: answers, timeouts and the
// watched subject's messages that are due.
func (w *world) drain(p *proc, now time.Duration) {
	keep := p.inbox[:0]
	tailDown := p.tailUntil > w.T
	iso := p.isoUntil > w.T
	for i, it := range p.inbox {
		if it.due > w.T {
			keep = append(keep, p.inbox[i:]...)
			break
		}
		switch it.kind {
		case itemVictim:
			if tailDown {
				keep = append(keep, it)
				continue
			}
			m := it.msg
			_, member, inc := w.subj.Parse(m.subject)
			if m.verdict != nil {
				w.tracef("%s sees verdict %d on %s", p.name(), m.seq, m.subject)
			}
			// The stamps: what the server's and the sender's clocks say
			// of the message; only a judge broken on purpose reads them.
			// Junk reaches the judge too (adversary.go), unless the
			// driver is broken on purpose to drop it.
			if w.dropForJudge(m) {
				break
			}
			if p.m.VictimRecord(member, inc, m.describe(), m.verdict, now,
				rawmember.Stamps{Server: stamp(m.ts), Sent: m.sent, HasSent: m.hb != nil && !m.raw}) {
				w.stats.JunkSeen++
			}
		case itemAnswer:
			if iso {
				continue // lost on the way: the timeout reports
			}
			w.report(p, it.req, it.seq, it.err, it.last, now)
		case itemTimeout:
			w.report(p, it.req, 0, errTimeout, liveness.LastMessage{}, now)
		case itemNoConn:
			w.report(p, it.req, 0, errNoConn, liveness.LastMessage{}, now)
		}
		if p.dead {
			return
		}
	}
	clear(p.inbox[len(keep):])
	p.inbox = keep
}

func (w *world) report(p *proc, r *request, seq uint64, err error, last liveness.LastMessage, now time.Duration) {
	if r.done {
		return
	}
	r.done = true
	switch r.kind {
	case reqAppend:
		p.m.Done(r.actID, seq, err, now)
		if r.isClose && err == nil {
			p.exitOnAck = true
		}
	case reqHeartbeat:
		if err == nil {
			p.m.HeartbeatAcked(r.actID, seq, now)
		} else {
			if !r.stalled && !errors.Is(err, rawmember.ErrConflict) {
				p.healthy = false
			}
			p.m.HeartbeatFailed(r.actID, now, err != errNoConn)
		}
	case reqVerdict:
		p.m.VerdictDone(r.actID, seq, err)
	case reqReadLast:
		if err != nil && !r.stalled {
			p.healthy = false
		}
		p.m.HeartbeatResolved(w.driverReads(last), err == nil)
	case reqInfo:
		if err == nil {
			p.m.Learned(seq, now)
		}
	}
	if p.exitOnAck {
		p.exitOnAck = false
		w.exit(p, "closed (close acknowledged)")
	}
}

// fold delivers the log records whose tail lag has passed, in order.
func (w *world) fold(p *proc) {
	if p.tailUntil > w.T {
		return
	}
	log := w.st.log
	for p.cursor < len(log) && w.st.logLanded[p.cursor]+p.lag <= w.T {
		out := decider.Apply(p.st, log[p.cursor])
		if want := w.authOut[p.cursor]; out.Kind != want {
			w.fail(KindDivergence, "%s folded seq %d as %v (%s), the authoritative fold as %v", p.name(), log[p.cursor].Seq, out.Kind, out.Reason, want)
		}
		p.cursor++
		p.stDirty = true
	}
}

// flush carries out the member's actions.
func (w *world) flush(p *proc) {
	for _, a := range p.m.Actions() {
		switch a.Kind {
		case rawmember.ActAppend:
			r := &request{kind: reqAppend, actID: a.ID, subject: w.subj.Log(), evs: a.Events, fenced: a.Fenced, fence: a.Fence}
			for _, ev := range a.Events {
				if _, ok := ev.(*events.MemberClosing); ok {
					r.isClose = true
				}
			}
			r.isLeader = a.Fenced
			w.send(p, r)
			if a.Fenced && w.ph == phaseChaos && w.chance(w.opt.LeaderCrashProb) {
				w.stats.LeaderCrashes++
				w.crash(p, "leader crashes mid-decision:")
				if w.chance(0.6) {
					w.pending = append(w.pending, pendingStart{at: w.T + w.dur(100*time.Millisecond, 6*time.Second), id: p.id})
				}
				return
			}
		case rawmember.ActHeartbeat:
			w.send(p, &request{kind: reqHeartbeat, actID: a.ID, subject: w.subj.Heartbeat(a.Member, a.Inc), hb: a.Heartbeat, hbSent: a.SentAt, fenced: a.Fenced && !w.opt.Broken.UnfencedHeartbeats, fence: a.Fence})
		case rawmember.ActVerdict:
			w.tracef("%s issues a verdict on %s/%d fenced on %d", p.name(), a.Member, a.Inc, a.Fence)
			w.send(p, &request{kind: reqVerdict, actID: a.ID, subject: w.subj.Heartbeat(a.Member, a.Inc), verdict: a.Verdict, fenced: a.Fenced, fence: a.Fence})
		case rawmember.ActReadLast:
			w.send(p, &request{kind: reqReadLast, subject: w.subj.Heartbeat(a.Member, a.Inc), fence: a.Fence})
		case rawmember.ActWatch:
			p.watchSubj, p.watchLive = w.subj.Heartbeat(a.Member, a.Inc), false
			w.send(p, &request{kind: reqWatch, subject: p.watchSubj})
		case rawmember.ActUnwatch:
			p.watchSubj, p.watchLive = "", false
		}
	}
}

// send puts a request on the network: it arrives at the stream after a delay,
// unless the member's connection is down; the client gives up at its deadline.
func (w *world) send(p *proc, r *request) {
	w.ord++
	r.ord = w.ord
	r.p = p
	r.sent = w.T
	timeout := w.opt.AppendTimeout
	if r.kind == reqHeartbeat || r.kind == reqReadLast || r.kind == reqVerdict {
		timeout = w.opt.AckTimeout
	}
	r.deadline = w.T + timeout
	if r.kind != reqWatch {
		w.deliver(p, &item{due: r.deadline, kind: itemTimeout, req: r})
	}
	if p.isoUntil > w.T {
		if r.kind != reqWatch && w.chance(0.5) {
			w.deliver(p, &item{due: w.T + w.dur(0, 5*time.Millisecond), kind: itemNoConn, req: r})
		} else if r.kind == reqWatch {
			// The consumer is created once the connection is back.
			r.arrive = p.isoUntil + w.netDelay()
			w.push(r)
		}
		return
	}
	r.arrive = w.T + w.netDelay()
	w.push(r)
}

// app is the simulated application, driven by the handler contract
// (rawmember.Handoff) as parti.Member's dispatcher drives a Handler: the
// calls are made one at a time, in order. Assigned starts acting at once; a
// Revoked call finishes the partition for a short while before it returns
// (at once when the lease is gone or the member closes), and the calls after
// it wait, as they wait for a blocking Revoked.
func (w *world) app(p *proc, now time.Duration) {
	p.belief = p.m.Owned(now)
	valid := p.m.LeaseValid(now) && !p.closing
	var rd rawmember.Ready
	if w.opt.Broken.AssignBeforeRelease {
		p.belief = append(p.belief, w.targetOf(p, now)...)
		rd = p.ho.StepView(p.m, p.st, p.belief)
	} else {
		rd = p.ho.Step(p.m, p.st, now)
	}
	p.calls = append(p.calls, rd.Calls...)
	for _, o := range rd.Reindexed {
		if pid, ok := universeIndex[o.ID]; ok && p.acting[pid].on {
			p.acting[pid].token = o.Token
		}
	}
	for len(p.calls) > 0 {
		c := p.calls[0]
		pid, known := universeIndex[c.Owned.ID]
		if !c.Revoke {
			if known {
				p.acting[pid] = act{on: true, token: c.Owned.Token}
			}
			p.calls = p.calls[1:]
			continue
		}
		if known {
			a := &p.acting[pid]
			switch {
			case !valid || !a.on:
				*a = act{}
			case a.stopAt == 0:
				a.stopAt = w.T + w.dur(0, 200*time.Millisecond)
				return
			case w.T < a.stopAt:
				return
			default:
				*a = act{}
			}
		}
		p.calls = p.calls[1:]
		if p.ho.Returned(p.m, c) {
			w.tracef("app of %s lets go of %s", p.name(), c.Owned.ID)
		}
	}
}

// targetOf is the broken AssignBeforeRelease view: the partitions the fold
// names p's member as the target of a move, acted on before the source
// released them (while the member may act at all).
func (w *world) targetOf(p *proc, now time.Duration) []rawmember.Owned {
	id, inc, ok := p.m.Identity()
	if !ok || !p.m.LeaseValid(now) || p.closing || p.leaving {
		return nil
	}
	var out []rawmember.Owned
	for i := range p.st.Owners {
		if o := &p.st.Owners[i]; o.Target == id && o.TargetInc == inc {
			out = append(out, rawmember.Owned{Index: uint32(i), ID: p.st.Partitions[i], Token: events.Token{Seq: p.st.LastSeq, Incarnation: inc}})
		}
	}
	return out
}

// write is the application writing to its storage, a token-checking store
// that remembers the highest token per partition and rejects lower ones. The
// store can only protect the current owner if tokens increase along the log:
// a superseded owner's token must be below the current owner's, and the
// current owner's writes must never be rejected, whatever the scenario. In the
// promise no write may be rejected at all.
func (w *world) write(p *proc) {
	id, inc, _ := p.m.Identity()
	for pid := range p.acting {
		a := &p.acting[pid]
		if !a.on {
			continue
		}
		w.stats.Writes++
		hi, seen := w.store[pid], w.storeSeen[pid]
		accepted := !seen || !a.token.Less(hi)
		if accepted {
			w.store[pid], w.storeSeen[pid] = a.token, true
		} else {
			w.stats.Rejected++
		}
		i, declared := w.auth.PartitionIndex(universe[pid])
		if !declared || w.auth.Owners[i].Owner == "" {
			continue
		}
		o := w.auth.Owners[i]
		cur := o.FencingToken()
		current := o.Owner == id && o.Inc == inc && a.token == cur
		switch {
		case current && !accepted:
			w.fail(KindStaleWrite, "the store rejected the current owner %s's write to %s with token %v (store holds %v)", p.name(), universe[pid], a.token, hi)
		case !current && !a.token.Less(cur):
			w.fail(KindStaleWrite, "%s writes %s with token %v, not below the current owner %s/%d's token %v", p.name(), universe[pid], a.token, o.Owner, o.Inc, cur)
		case !current && !accepted:
			w.stats.StaleRejected++
		}
		if !accepted && !w.opt.ExpectOverlap {
			w.fail(KindWriteRejected, "%s's write to %s with token %v was rejected (store holds %v)", p.name(), universe[pid], a.token, hi)
		}
	}
}

// --- checks ------------------------------------------------------------------

func (w *world) check() {
	w.checkOverlap()
	if w.authDirty {
		w.authDirty = false
		if err := decider.CheckInvariants(w.auth); err != nil {
			w.fail(KindInvariant, "authoritative fold at seq %d: %v", w.auth.LastSeq, err)
		}
		w.checkPlacement()
	}
	for _, p := range w.procs {
		if !p.dead && p.stDirty {
			p.stDirty = false
			if err := decider.CheckInvariants(p.st); err != nil {
				w.fail(KindInvariant, "%s's fold at seq %d: %v", p.name(), p.st.LastSeq, err)
			}
		}
	}
	if w.step%25 == 0 {
		w.checkDigests()
	}
	if w.step%300 == 0 {
		if data, h, err := decider.Snapshot(w.auth); err == nil {
			w.snap, w.snapHash = data, h
		}
	}
	if w.step%1000 == 0 {
		w.refold()
	}
	if w.ph == phaseCalm && w.T-w.calmStart >= w.quietBound {
		w.checkLiveness()
	}
}

func (w *world) checkOverlap() {
	for i := range w.owner {
		w.owner[i], w.appOwner[i] = -1, -1
	}
	overlap := false
	for _, p := range w.procs {
		if p.dead {
			continue
		}
		for _, o := range p.belief {
			pid, ok := universeIndex[o.ID]
			if !ok {
				continue
			}
			if q := w.owner[pid]; q >= 0 {
				overlap = true
				if !w.opt.ExpectOverlap {
					w.fail(KindOverlap, "%s and %s both believe they own %s (tokens %v)", w.procs[q].name(), p.name(), o.ID, o.Token)
				}
			}
			w.owner[pid] = int32(p.n)
		}
		for pid := range p.acting {
			if !p.acting[pid].on {
				continue
			}
			if q := w.appOwner[pid]; q >= 0 {
				overlap = true
				if !w.opt.ExpectOverlap {
					w.fail(KindAppOverlap, "the applications of %s and %s both act on %s (tokens %v and %v)", w.procs[q].name(), p.name(), universe[pid], w.procs[q].acting[pid].token, p.acting[pid].token)
				}
			}
			w.appOwner[pid] = int32(p.n)
		}
	}
	if overlap {
		w.stats.Overlaps++
	}
}

// checkDigests records the authoritative state's hash at its last sequence
// and compares every member whose fold stands at a recorded sequence.
func (w *world) checkDigests() {
	if _, h, err := decider.Snapshot(w.auth); err == nil {
		w.authHash[w.auth.LastSeq] = h
	}
	for _, p := range w.procs {
		if p.dead {
			continue
		}
		want, ok := w.authHash[p.st.LastSeq]
		if !ok {
			continue
		}
		_, h, err := decider.Snapshot(p.st)
		if err != nil {
			continue
		}
		w.stats.DigestChecks++
		if h != want {
			w.fail(KindDivergence, "%s's fold at seq %d hashes %s, the authoritative fold %s", p.name(), p.st.LastSeq, h, want)
		}
	}
}

// refold folds the whole log again from scratch, and from a snapshot taken at
// a random earlier record, and compares both with the authoritative state.
func (w *world) refold() {
	_, want, err := decider.Snapshot(w.auth)
	if err != nil {
		return
	}
	w.stats.Refolds++
	log := w.st.log
	cut := w.rng.IntN(len(log) + 1)
	s := decider.New()
	var snap []byte
	var snapHash string
	for i, r := range log {
		if i == cut {
			snap, snapHash, _ = decider.Snapshot(s)
		}
		decider.Apply(s, r)
	}
	if _, h, _ := decider.Snapshot(s); h != want {
		w.fail(KindRefold, "refold from scratch of %d records hashes %s, the authoritative fold %s", len(log), h, want)
		return
	}
	if snap == nil {
		return
	}
	r, err := decider.Restore(snap, snapHash)
	if err != nil {
		w.fail(KindRefold, "restore of the snapshot at record %d: %v", cut, err)
		return
	}
	for _, rec := range log[cut:] {
		decider.Apply(r, rec)
	}
	if _, h, _ := decider.Snapshot(r); h != want {
		w.fail(KindRefold, "fold from a snapshot at record %d of %d hashes %s, the authoritative fold %s", cut, len(log), h, want)
	}
}

func (w *world) checkLiveness() {
	w.stats.LivenessChecks++
	for i, id := range w.auth.Partitions {
		o := w.auth.Owners[i]
		if w.unplaceable(id) {
			continue // no eligible member meets its constraint (placement.go)
		}
		if o.Owner == "" {
			w.fail(KindLiveness, "%s is unowned %v after the group went quiet (bound %v)", id, w.T-w.calmStart, w.quietBound)
			return
		}
		m := w.auth.Incarnation(o.Owner, o.Inc)
		if m == nil || !m.Live() {
			w.fail(KindLiveness, "%s is owned by %s/%d, which is not live, %v after the group went quiet", id, o.Owner, o.Inc, w.T-w.calmStart)
			return
		}
		p := w.byNonce[m.Nonce]
		if p == nil || p.dead {
			w.fail(KindLiveness, "%s is owned by %s/%d, whose process is gone, %v after the group went quiet", id, o.Owner, o.Inc, w.T-w.calmStart)
			return
		}
		pid := universeIndex[id]
		if w.owner[pid] != int32(p.n) {
			w.fail(KindLiveness, "%s is owned by %s but it does not believe so %v after the group went quiet (believer: %d)", id, p.name(), w.T-w.calmStart, w.owner[pid])
			return
		}
	}
}

// describe summarizes the world for a failure report.
func (w *world) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "log %d records, last seq %d, phase %v gen %d window %v\n", len(w.st.log), w.auth.LastSeq, w.auth.Phase(), w.auth.Generation, w.auth.Window)
	for _, id := range w.auth.Order {
		m := w.auth.Members[id]
		fmt.Fprintf(&b, "  member %s/%d live=%v leaving=%v closing=%v owns %d\n", m.ID, m.Incarnation, m.Live(), m.Leaving, m.Closing, len(w.auth.Owned(m.ID, m.Incarnation)))
	}
	for _, p := range w.procs {
		if p.dead {
			continue
		}
		fmt.Fprintf(&b, "  proc %s: seq %d stopped=%v leader=%v lease=%v believes %d paused=%v\n", p.name(), p.st.LastSeq, p.m.Stopped(), p.m.IsLeader(), p.m.LeaseValid(p.now(w.T)), len(p.belief), p.pausedUntil > w.T)
	}
	return b.String()
}

// brief describes an event compactly for the trace.
func brief(ev events.Event) string {
	switch e := ev.(type) {
	case *events.AssignmentDecided:
		var b strings.Builder
		fmt.Fprintf(&b, "gen %d on %d:", e.Generation, e.BasedOn)
		for _, m := range e.Moves {
			fmt.Fprintf(&b, " %v %s/%d->%s/%d", []uint32(m.Parts), m.From, m.FromInc, m.To, m.ToInc)
		}
		return b.String()
	case *events.PartitionsReleased:
		return fmt.Sprintf("%s/%d %v", e.Member, e.Incarnation, e.Released)
	case *events.MemberClaimed:
		return fmt.Sprintf("%q %s", e.ID, e.Nonce)
	case *events.PartitionsDeclared:
		return fmt.Sprintf("v%d %d ids by %s", e.Version, len(e.IDs), e.By)
	case *events.MemberRemoved:
		return fmt.Sprintf("%s/%d", e.Member, e.Incarnation)
	case *events.MemberLeft:
		return fmt.Sprintf("%s/%d", e.Member, e.Incarnation)
	case *events.MemberClosing:
		return fmt.Sprintf("%s/%d", e.Member, e.Incarnation)
	}
	return ""
}
