package parti

// Metrics receives what an operator needs to watch a member. Implementations
// must be safe for concurrent use and must not block. Embed NopMetrics to
// implement only some methods.
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
}

// NopMetrics implements Metrics by doing nothing.
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
