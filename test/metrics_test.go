package test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/internal/natstest"
)

type recMetrics struct {
	parti.NopMetrics
	mu         sync.Mutex
	phase      string
	members    int
	owned      int
	rebalances int
	moves      int
	applied    uint64
	conflicts  int
}

func (r *recMetrics) Phase(p string) { r.mu.Lock(); r.phase = p; r.mu.Unlock() }
func (r *recMetrics) Members(n int)  { r.mu.Lock(); r.members = n; r.mu.Unlock() }
func (r *recMetrics) Owned(n int)    { r.mu.Lock(); r.owned = n; r.mu.Unlock() }
func (r *recMetrics) FoldLag(uint64) {}
func (r *recMetrics) AppendConflict(string) {
	r.mu.Lock()
	r.conflicts++
	r.mu.Unlock()
}
func (r *recMetrics) Rebalance(_ string, moves int) {
	r.mu.Lock()
	r.rebalances++
	r.moves += moves
	r.mu.Unlock()
}
func (r *recMetrics) Records(applied, _ uint64) { r.mu.Lock(); r.applied = applied; r.mu.Unlock() }

func TestMetricsReportWhatHappened(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	met := &recMetrics{}
	cfg := parti.Config{Group: "metrics", Partitions: partitions(16), Timings: testTimings(), Window: 100 * time.Millisecond, ExpectedMembers: 1, Metrics: met}
	m, err := parti.Join(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Leave(ctx)
	if err := m.WaitStable(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the metrics to catch up", func() bool {
		met.mu.Lock()
		defer met.mu.Unlock()
		return met.phase == "stable" && met.owned == 16 && met.members == 1 && met.rebalances >= 1 && met.moves == 16 && met.applied >= 3
	})
}
