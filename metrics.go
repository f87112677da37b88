package parti

import "time"

// Metrics receives what an operator needs to watch a member. Implementations
// must be safe for concurrent use and must not block.
//
// Metrics grows as the member learns to report more: a method added in a
// later release is added to NopMetrics at the same time, so an
// implementation that embeds NopMetrics keeps compiling and reports nothing
// for what it does not implement. Implementations should therefore embed
// NopMetrics (the Prometheus implementation in package partiprom does).
type Metrics interface {
	// Phase reports the group's phase as this member's fold sees it.
	Phase(phase string)
	// Members reports the number of live members.
	Members(n int)
	// Owned reports the number of partitions this member may act on.
	Owned(n int)
	// Rebalance counts a decision this member appended as the leader.
	Rebalance(reason string, moves int)
	// Records counts log records folded: applied and skipped (garbage).
	Records(applied, skipped uint64)
	// AppendConflict counts a fenced append refused by the stream.
	AppendConflict(kind string)
	// FoldLag reports how many known log records the fold has not applied.
	FoldLag(records uint64)

	// FoldLagTime reports for how long the fold has had known log records
	// it has not applied (0 while it is caught up). A member whose fold
	// stays behind for longer than the expiry stops heartbeating.
	FoldLagTime(d time.Duration)
	// Heartbeat counts a heartbeat of this member: acknowledged (ok) or
	// failed (refused, timed out or unanswered).
	Heartbeat(ok bool)
	// LeaseLost counts a lapse of this member's lease while it held one:
	// it stopped acting on its partitions until a heartbeat is acked again.
	LeaseLost()
	// LeaseRemaining reports how long this member may still act (0 when
	// its lease is not valid).
	LeaseRemaining(d time.Duration)
	// Verdict counts an expiry verdict this member appended as a judge.
	Verdict()
	// Junk counts a message that is not what a member writes, seen where
	// the member reads: "heartbeat-subject" for the judged member's
	// heartbeat subject (log garbage is counted by Records).
	Junk(where string)
	// TailStalled counts a stall of the fold's log tail: the log held
	// records the fold did not apply, and it applied none for a heartbeat
	// interval; the member then started a new tail.
	TailStalled()
}

// NopMetrics implements Metrics by doing nothing. Embed it in an
// implementation so that methods added to Metrics later do not break it.
type NopMetrics struct{}

// Phase implements Metrics.
func (NopMetrics) Phase(string) {}

// Members implements Metrics.
func (NopMetrics) Members(int) {}

// Owned implements Metrics.
func (NopMetrics) Owned(int) {}

// Rebalance implements Metrics.
func (NopMetrics) Rebalance(string, int) {}

// Records implements Metrics.
func (NopMetrics) Records(uint64, uint64) {}

// AppendConflict implements Metrics.
func (NopMetrics) AppendConflict(string) {}

// FoldLag implements Metrics.
func (NopMetrics) FoldLag(uint64) {}

// FoldLagTime implements Metrics.
func (NopMetrics) FoldLagTime(time.Duration) {}

// Heartbeat implements Metrics.
func (NopMetrics) Heartbeat(bool) {}

// LeaseLost implements Metrics.
func (NopMetrics) LeaseLost() {}

// LeaseRemaining implements Metrics.
func (NopMetrics) LeaseRemaining(time.Duration) {}

// Verdict implements Metrics.
func (NopMetrics) Verdict() {}

// Junk implements Metrics.
func (NopMetrics) Junk(string) {}

// TailStalled implements Metrics.
func (NopMetrics) TailStalled() {}
