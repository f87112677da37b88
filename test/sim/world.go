package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"time"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
	"github.com/parti-io/parti/rawmember"
)

// universeSize is the number of partition IDs a declared set draws from.
const universeSize = 100

// defaultUniverse is every partition ID a declared set of a random run may
// contain (a world's universe, which pids index, unless a script gives its
// own).
var defaultUniverse, defaultUniverseIndex = func() ([]string, map[string]int) {
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
	early  bool          // acted on without an Assigned call (Broken.AssignBeforeRelease)
}

// proc is one member process: its rawmember, its own fold, its clock, its
// driver's inbox and its application.
type proc struct {
	n     int
	id    string // the configured ID
	nonce string
	d     *rawmember.Driver // the member and the handler contract, as parti.Member drives them
	m     *rawmember.Member // d's member (a process never rejoins in place: a restart is a new proc)
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
	acting  []act            // by pid
	calls   []rawmember.Call // handler calls handed to the application, not made yet
	healthy bool

	// h is the application's Handler in a script (nil in random runs):
	// the application calls it for each call it makes (script.go);
	// handed holds what h was assigned and not revoked, by partition ID.
	h      parti.Handler
	handed map[string]handedOut

	watchSubj string
	watchLive bool
	dating    victimDating // a judge broken on purpose dates by a foreign clock (judgeclock.go)

	closing   bool
	closeAt   time.Duration
	exitOnAck bool
	leaving   bool
	nextInfo  time.Duration
	lastRun   time.Duration // the last step it ran (was not paused)
	stDirty   bool
	started   time.Duration
	diedAt    time.Duration // when it crashed or exited
	endWhy    string        // why it crashed or exited

	lastHBSent  time.Duration // when its driver last sent a heartbeat
	hbHoldUntil time.Duration // a broken driver holds heartbeats until then (adversary.go)
	heldHB      *request
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
	// phaseScripted is a script's only phase (script.go): no fault, no
	// process starts or ends but those the script asks for (and the rejoin
	// of an expired member), and no quiet-period checks (the script's
	// Settle bounds its own waits).
	phaseScripted
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
	// universe is every partition ID a declared set may contain; pids
	// index it (uindex gives the pid of an ID).
	universe []string
	uindex   map[string]int
	nextID   int
	pending  []pendingStart

	ph         phase
	phaseEnd   time.Duration
	calmStart  time.Duration
	quietBound time.Duration
	calmDead   int                  // members the fold held at the quiet phase's start whose process was gone
	judges     map[string]judgeSeen // by victim incarnation ("id/inc"): who judges it, since when (checkExpiries)

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

	// handlers are a script's Handlers by member ID (script.go): a process
	// started with the ID, a rejoin among them, calls it.
	handlers map[string]parti.Handler

	// retired lists, in the order the authoritative fold retired them,
	// the nonces of incarnations that are gone (the adversary replays
	// their claims); grants names the incarnation each nonce was granted
	// to (a second one is a ghost).
	retired []string
	grants  map[string]grant
}

// grant is the incarnation a nonce was granted to, and when.
type grant struct {
	inc string
	at  time.Duration
}

func newWorld(opt Options) *world {
	w := baseWorld(opt)
	n := opt.MinPartitions + w.rng.IntN(opt.MaxPartitions-opt.MinPartitions+1)
	w.partitions = slices.Clone(w.universe[:n])
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

// setUniverse sets the partition IDs the world's declared sets draw from,
// and sizes what pids index.
func (w *world) setUniverse(ids []string, index map[string]int) {
	w.universe, w.uindex = ids, index
	w.store = make([]events.Token, len(ids))
	w.storeSeen = make([]bool, len(ids))
	w.owner = make([]int32, len(ids))
	w.appOwner = make([]int32, len(ids))
}

// baseWorld returns a world with an empty stream and fold, no process,
// the default universe, and opt's seeded source (not drawn from yet).
func baseWorld(opt Options) *world {
	w := &world{
		opt:      opt,
		rng:      rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15)),
		st:       newStream(opt.TTL),
		subj:     events.Subjects{Group: "g", Prefix: "parti"},
		auth:     decider.New(),
		authHash: map[uint64]string{},
		grants:   map[string]grant{},
		byNonce:  map[string]*proc{},
	}
	w.setUniverse(defaultUniverse, defaultUniverseIndex)
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
		w.tick()
		if w.violation != nil {
			return
		}
	}
	w.step = w.opt.Steps
	w.refold()
}

// tick runs step w.step: simulated time moves on, the phase's faults (none
// in a script), the adversary, the stream and every process step, and the
// checks run.
func (w *world) tick() {
	dt := w.dur(w.opt.MinStep, w.opt.MaxStep)
	w.T += dt
	w.phaseStep(dt)
	w.adversary(dt)
	w.streamStep()
	for i := 0; i < len(w.procs); i++ {
		w.procStep(w.procs[i], dt)
	}
	w.check()
}
