package replaytest

import (
	"github.com/parti-io/parti/decider"
	"time"

	"github.com/parti-io/parti/events"
)

// Base is the server time of the first record of the scenarios' histories.
var Base = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// Step is the server time between two records of the scenarios' histories.
const Step = 250 * time.Millisecond

// advancer is implemented by emitters whose clock a scenario can move.
type advancer interface{ Advance(time.Duration) }

func (b *Builder) advance(d time.Duration) {
	if a, ok := b.em.(advancer); ok {
		a.Advance(d)
	}
}

// Scenario writes a small group's life through b (a group of 12 partitions,
// "p-00" to "p-11"):
//
//   - worker-0, worker-1 and worker-2 claim; each heartbeats; worker-0, the
//     leader, sets the protocol version, declares the partitions (strategy
//     sticky), closes the cold-start window and decides: every partition is
//     placed at once;
//   - worker-3 joins (a scale window), the window closes, a rebalance moves
//     partitions to it, and the sources release them;
//   - garbage lands on the log and is skipped;
//   - worker-1 stops heartbeating: worker-2, its judge, appends a verdict
//     after 6 s; the removal follows; the leader computes the emergency
//     decision, but worker-3's stale release (ignored) lands first, so that
//     decision is rejected; the leader decides again and it is accepted;
//   - worker-2 closes for a restart and its new process claims the ID
//     again: incarnation 2 takes its partitions over with zero moves;
//   - an operator (alice) moves p-00 to worker-0; its owner releases it;
//   - worker-3 leaves: its partitions move off it, it releases them and is
//     gone; heartbeats throughout.
func Scenario(b *Builder) {
	for _, id := range []string{"worker-0", "worker-1", "worker-2"} {
		b.Claim(id)
	}
	b.Heartbeats()
	b.SetProtocol(events.MaxVersion)
	b.Declare(PartitionIDs(12), "sticky", 0)
	b.CloseWindow(100)
	b.Decide()
	b.Heartbeats()

	b.Claim("worker-3")
	b.Heartbeat("worker-3")
	b.CloseWindow(1000)
	b.Decide()
	b.Heartbeats()

	b.LogRaw(nil, []byte(`{"v":1,"t":"oops"}`))

	b.Heartbeat("worker-0")
	b.Heartbeat("worker-2")
	b.Heartbeat("worker-3")
	b.advance(6 * time.Second)
	b.Crash("worker-1", 6120)
	stale := b.Compute()
	b.StaleRelease("worker-3")
	b.EmitDecision(stale) // rejected: computed on the log before the release
	b.Decide()
	b.Heartbeats()

	b.CloseForRestart("worker-2")
	b.advance(2 * time.Second)
	b.Claim("worker-2")
	b.Heartbeats()

	b.Operator(events.OperatorAction{Action: events.OpMove, Partition: "p-00", Target: "worker-0", By: "alice", Note: "hot tenant"})
	if o := b.State.Owners[0]; o.Target != "" {
		b.Release(o.Owner)
	}
	b.Heartbeats()

	b.Leave("worker-3")
	b.Decide()
	b.Heartbeats()
}

// ViolationScenario writes, through b and its Recorder rec, a history that
// a correct fold accepts record by record but that breaks the audit's rules:
//
//   - worker-1 crashes and the emergency decision lands only two minutes
//     later: its partitions stay unowned far longer than a 30 s bound (and a
//     heartbeat in between has a server time one second in the past, so the
//     span is approximate);
//   - an operator force-expires worker-2, and a decision for its partitions
//     is stored with stream sequence 0 (a spliced history): the fold skips a
//     record without a sequence and the audit reports the broken order.
func ViolationScenario(b *Builder, rec *Recorder) {
	for _, id := range []string{"worker-0", "worker-1", "worker-2"} {
		b.Claim(id)
	}
	b.Heartbeats()
	b.Declare(PartitionIDs(6), "sticky", 0)
	b.CloseWindow(100)
	b.Decide()
	b.Heartbeats()

	b.Crash("worker-1", 6050)
	rec.Advance(time.Minute)
	b.Heartbeat("worker-0")
	rec.Advance(-time.Second - Step)
	b.Heartbeat("worker-2")
	rec.Advance(time.Minute)
	b.Decide()
	b.Heartbeats()

	// A force-expire naming no incarnation: a record of a log written
	// before force-expire went through a verdict. It still removes at once.
	b.must("legacy force-expire", func() decider.Outcome {
		_, out := b.Log(&events.OperatorAction{Action: events.OpForceExpire, Member: "worker-2", By: "bob"}, false)
		return out
	}())
	d := b.Compute()
	rec.ForceSeq(0)
	b.EmitDecision(d)
	b.Heartbeat("worker-0")
}
