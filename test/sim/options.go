package sim

import (
	"fmt"
	"time"

	"github.com/parti-io/parti/liveness"
)

// Options configure one simulated run. DefaultOptions gives the promise: clock
// rates within ±1 %, pauses up to the margin, every fault of the model.
type Options struct {
	Seed  uint64
	Steps int
	// MinStep and MaxStep bound one step of simulated time.
	MinStep, MaxStep time.Duration

	// Timings are the members' liveness timings (the same for all).
	Timings liveness.Timings
	Window  time.Duration
	Grace   time.Duration

	MinMembers, MaxMembers       int // initial members
	MaxProcs                     int // live processes at most (joins stop there)
	MinPartitions, MaxPartitions int // declared set size

	// RateSpread bounds each member's clock rate: 1 ± RateSpread.
	RateSpread float64
	// MaxPause is the longest process pause (the promise: the margin).
	MaxPause time.Duration
	// LongPauses adds pauses of LongPauseMin..LongPauseMax: beyond the
	// promise. Overlaps in beliefs are then expected and counted
	// (ExpectOverlap); the token-checking store must still never reject the
	// current owner, and so rejects every write of a stale owner once the
	// new owner wrote.
	LongPauses                 bool
	LongPauseMin, LongPauseMax time.Duration
	ExpectOverlap              bool

	// MaxStall is the longest stream stall (a stream-leader election).
	MaxStall time.Duration
	// TTL is the heartbeats' per-message TTL, in server time.
	TTL time.Duration
	// MaxSkewStep bounds one step of the server's clock (a stream-leader
	// change to a server whose clock differs, an NTP step): each step is
	// uniform in ±MaxSkewStep, at SkewRate.
	MaxSkewStep time.Duration
	// LongOutages makes one stall in ten outlast the TTL.
	LongOutages bool
	// AckTimeout and AppendTimeout are the driver's client timeouts.
	AckTimeout, AppendTimeout time.Duration

	// Fault rates in chaos phases, per second of simulated time.
	CrashRate, PauseRate, IsolateRate, StallRate, CloseRate, LeaveRate,
	JoinRate, DeclareRate, SkewRate, FoldStallRate float64
	// LossProb is the probability that an answer is lost (chaos only);
	// LeaderCrashProb that a leader crashes right after sending a fenced
	// append (chaos only).
	LossProb, LeaderCrashProb float64

	// Placement runs odd seeds in placement mode: zones, capacities,
	// constraint classes and the "placement" strategy, with zone losses at
	// ZoneLossRate per second of chaos (see placement.go).
	Placement    bool
	ZoneLossRate float64
	// PlacementStrategy overrides the strategy of placement mode (default
	// "placement"); the simulator's own tests set one that ignores
	// constraints, to show the placement check catches it.
	PlacementStrategy string

	// Adversary is the adversary's schedule (adversary.go): a process with
	// a member's permissions that publishes junk, replays old records and
	// runs operator actions. The zero value runs none.
	Adversary Adversary

	// Broken selects deliberately broken member behaviour.
	Broken Broken

	// Trace keeps the last Trace events for a failure report (0: none; a
	// failing run is rerun with tracing on).
	Trace int
}

// Timings returns the simulator's timing profile: the liveness Test profile
// (heartbeat 500 ms, expiry 3 s, margin 1.5 s, ack budget 500 ms, lease
// 1.4 s, strictly below expiry − margin). It keeps the promise by the
// timings alone, with pauses up to the margin and clocks off by 1 %:
// lease/0.99 + margin + one step (50 ms) = 2.964 s < expiry/1.01 = 2.970 s.
func Timings() liveness.Timings {
	return liveness.Test()
}

// DefaultOptions returns the options of the promise for one seed.
func DefaultOptions(seed uint64) Options {
	t := Timings()
	return Options{
		Seed:          seed,
		Steps:         5000,
		MinStep:       10 * time.Millisecond,
		MaxStep:       50 * time.Millisecond,
		Timings:       t,
		Window:        300 * time.Millisecond,
		Grace:         5 * time.Second,
		MinMembers:    3,
		MaxMembers:    7,
		MaxProcs:      8,
		MinPartitions: 8,
		MaxPartitions: 64,
		RateSpread:    0.01,
		MaxPause:      t.Margin,
		LongPauseMin:  4 * time.Second,
		LongPauseMax:  10 * time.Second,
		MaxStall:      8 * time.Second,
		MaxSkewStep:   2 * time.Second,
		TTL:           30 * time.Second,
		AckTimeout:    1 * time.Second,
		AppendTimeout: 2 * time.Second,

		CrashRate:     0.06,
		PauseRate:     0.25,
		IsolateRate:   0.04,
		StallRate:     0.03,
		CloseRate:     0.05,
		LeaveRate:     0.03,
		JoinRate:      0.04,
		DeclareRate:   0.1,
		SkewRate:      0.05,
		FoldStallRate: 0.03,

		LossProb:        0.01,
		LeaderCrashProb: 0.03,

		Placement:    true,
		ZoneLossRate: 0.05,

		Adversary: DefaultAdversary(),
	}
}

// Kind classifies a violation.
type Kind int

// Violation kinds.
const (
	KindOverlap          Kind = iota + 1 // two members believe they own a partition at once
	KindAppOverlap                       // two applications act on a partition at once
	KindInvariant                        // decider.CheckInvariants failed
	KindDivergence                       // a member's fold differs from the authoritative one
	KindRefold                           // refolding (from scratch or a snapshot) differs
	KindLiveness                         // after quiescence a partition has no live, believing owner
	KindGraceMoved                       // a restart inside the grace moved a partition
	KindHealthyExpired                   // a healthy member was expired
	KindDecisionRejected                 // a fenced leader append did not apply where it landed
	KindWriteRejected                    // the token store rejected a write (promise scenarios)
	KindStaleWrite                       // tokens do not increase along the log: a superseded owner's is not lower, or the current owner's write is rejected
	KindPanic                            // the code under test panicked
	KindPlacement                        // a partition owned by a member without its required labels
	KindSlowExpiry                       // a crashed member was not expired within its bound (see checkExpiries)
	KindStuckClaim                       // a restart's claim was not granted within the quiet bound
	KindGhost                            // a nonce was granted to a second incarnation
)

func (k Kind) String() string {
	switch k {
	case KindOverlap:
		return "overlap"
	case KindAppOverlap:
		return "app-overlap"
	case KindInvariant:
		return "invariant"
	case KindDivergence:
		return "divergence"
	case KindRefold:
		return "refold"
	case KindLiveness:
		return "liveness"
	case KindGraceMoved:
		return "grace-moved"
	case KindHealthyExpired:
		return "healthy-expired"
	case KindDecisionRejected:
		return "decision-rejected"
	case KindWriteRejected:
		return "write-rejected"
	case KindStaleWrite:
		return "token-order"
	case KindPanic:
		return "panic"
	case KindPlacement:
		return "placement"
	case KindSlowExpiry:
		return "slow-expiry"
	case KindStuckClaim:
		return "stuck-claim"
	case KindGhost:
		return "ghost"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Violation is the first invariant a run broke.
type Violation struct {
	Kind Kind
	Step int
	At   time.Duration // simulated real time
	Msg  string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("step %d (t=%v): %v: %s", v.Step, v.At, v.Kind, v.Msg)
}

// Stats count what a run did, to show that the faults and checks happened.
type Stats struct {
	Steps          int
	SimTime        time.Duration
	LogRecords     int
	Decisions      int
	Crashes        int
	Pauses         int
	Isolations     int
	Stalls         int
	Closes         int
	Leaves         int
	Joins          int
	Declarations   int
	LeaderCrashes  int
	Expired        int // members removed by a verdict
	GraceRestarts  int // restarts inside the grace checked to move nothing
	LivenessChecks int // steps at which liveness after quiescence was checked
	DigestChecks   int
	Refolds        int
	Overlaps       int // steps with an overlap (only counted with ExpectOverlap)
	// The adversary's doings (adversary.go) and the junk judges met.
	Junk, Replays, OperatorActions, JunkSeen int
	Writes                                   int
	Rejected                                 int // writes the token store rejected
	StaleRejected                            int // ... of which by an owner the log had superseded
	CalmPhases                               int
	ZoneLosses                               int // zone-loss faults (placement mode)
}

// Result is the outcome of one run.
type Result struct {
	Seed      uint64
	Violation *Violation
	Stats     Stats
	Trace     []string
	State     string // the world at the violation
}

func (s *Stats) add(o Stats) {
	s.Steps += o.Steps
	s.SimTime += o.SimTime
	s.LogRecords += o.LogRecords
	s.Decisions += o.Decisions
	s.Crashes += o.Crashes
	s.Pauses += o.Pauses
	s.Isolations += o.Isolations
	s.Stalls += o.Stalls
	s.Closes += o.Closes
	s.Leaves += o.Leaves
	s.Joins += o.Joins
	s.Declarations += o.Declarations
	s.LeaderCrashes += o.LeaderCrashes
	s.Expired += o.Expired
	s.GraceRestarts += o.GraceRestarts
	s.LivenessChecks += o.LivenessChecks
	s.DigestChecks += o.DigestChecks
	s.Refolds += o.Refolds
	s.Overlaps += o.Overlaps
	s.Writes += o.Writes
	s.Rejected += o.Rejected
	s.StaleRejected += o.StaleRejected
	s.CalmPhases += o.CalmPhases
	s.ZoneLosses += o.ZoneLosses
	s.Junk += o.Junk
	s.Replays += o.Replays
	s.OperatorActions += o.OperatorActions
	s.JunkSeen += o.JunkSeen
}

// Broken lists deliberately wrong behaviours the simulator must catch (its
// teeth, see TestBrokenVariantsAreCaught). They are injected by the
// simulator around the production state machine, which knows nothing of
// them.
type Broken struct {
	// AssignBeforeRelease: the application acts on a partition as soon as
	// the fold names its member as a move's target, before the source
	// released it, on its own: no Assigned call tells it to (actEarly).
	AssignBeforeRelease bool
	// UnfencedHeartbeats: heartbeats are appended without the
	// expected-sequence check.
	UnfencedHeartbeats bool
	// JudgeClock makes the judge's driver date its victim's heartbeats by
	// a clock other than its member's own (see JudgeClock).
	JudgeClock JudgeClock
	// JudgeIgnoresOwnGaps gives every member a judge that counts from the
	// victim's last sighting and ignores its own heartbeats' gaps
	// (ownGapsJudge, through rawmember.Config.NewJudge).
	JudgeIgnoresOwnGaps bool
}
