package partiprom_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parti-io/parti/internal/waitfor"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/liveness"
	"github.com/parti-io/parti/partiprom"
)

func parts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("p-%03d", i)
	}
	return out
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	waitfor.Until(t, timeout, what, cond)
}

// value sums the samples of metric name in the gathered families whose
// labels include every pair of want.
func value(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !matches(m, want) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func matches(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// TestScrapeAfterCrashAndLeave runs a real group of three members, each
// reporting through partiprom, crashes one and makes another leave, then
// scrapes the registry: what happened is in the series, the names pass
// Prometheus' lint, and no partition ID became a label value.
func TestScrapeAfterCrashAndLeave(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	reg := prometheus.NewRegistry()
	prom, err := partiprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := partiprom.New(reg); err == nil {
		t.Fatal("a second New on the same registry succeeded; want an AlreadyRegisteredError")
	} else if are := (prometheus.AlreadyRegisteredError{}); !errors.As(err, &are) {
		t.Fatalf("second New: %v; want an AlreadyRegisteredError", err)
	}

	const group, n = "prom", 24
	ps := parts(n)
	members := map[string]*parti.Member{}
	for _, id := range []string{"a", "b", "c"} {
		cfg := parti.Config{
			Group: group, ID: id, Partitions: ps, Timings: liveness.Test(),
			Window: 100 * time.Millisecond, ExpectedMembers: 3,
			Metrics: prom.Member(group, id),
		}
		m, err := parti.Join(ctx, js, cfg)
		if err != nil {
			t.Fatalf("join %s: %v", id, err)
		}
		members[id] = m
		defer m.Stop()
	}
	a := map[string]string{"group": group, "member": "a"}
	waitFor(t, 30*time.Second, "three members owning every partition", func() bool {
		total := 0.0
		for _, id := range []string{"a", "b", "c"} {
			total += value(t, reg, "parti_owned_partitions", map[string]string{"member": id})
		}
		return total == n && value(t, reg, "parti_members", a) == 3
	})

	members["c"].Stop() // a crash: the others must judge it
	waitFor(t, 30*time.Second, "a verdict on the crashed member", func() bool {
		return value(t, reg, "parti_expiry_verdicts_total", nil) >= 1 &&
			value(t, reg, "parti_members", a) == 2
	})
	if err := members["b"].Leave(ctx); err != nil {
		t.Fatalf("leave b: %v", err)
	}
	waitFor(t, 30*time.Second, "a alone owning every partition", func() bool {
		return value(t, reg, "parti_owned_partitions", a) == n &&
			value(t, reg, "parti_members", a) == 1 &&
			value(t, reg, "parti_phase", map[string]string{"member": "a", "phase": "stable"}) == 1
	})

	if got := value(t, reg, "parti_heartbeats_total", map[string]string{"member": "a", "result": "ok"}); got < 1 {
		t.Errorf("parti_heartbeats_total{member=a,result=ok} = %v; want > 0", got)
	}
	if got := value(t, reg, "parti_rebalances_total", nil); got < 3 {
		t.Errorf("parti_rebalances_total = %v; want ≥ 3 (cold start, crash, leave)", got)
	}
	if got := value(t, reg, "parti_partition_moves_total", nil); got < n {
		t.Errorf("parti_partition_moves_total = %v; want ≥ %d", got, n)
	}
	if got := value(t, reg, "parti_log_records_total", map[string]string{"member": "a", "result": "applied"}); got < 5 {
		t.Errorf("parti_log_records_total{applied} for a = %v; want ≥ 5", got)
	}
	if got := value(t, reg, "parti_phase", map[string]string{"member": "a"}); got != 1 {
		t.Errorf("parti_phase for a sums to %v; want exactly one phase at 1", got)
	}
	if got := value(t, reg, "parti_lease_remaining_seconds", a); got <= 0 {
		t.Errorf("parti_lease_remaining_seconds for a = %v; want > 0 while it holds a lease", got)
	}

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "parti_") {
			t.Errorf("metric %s lacks the parti_ prefix", mf.GetName())
		}
		if mf.GetHelp() == "" {
			t.Errorf("metric %s has no help text", mf.GetName())
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.HasPrefix(l.GetValue(), "p-") {
					t.Errorf("metric %s has the partition ID %q as a label value", mf.GetName(), l.GetValue())
				}
			}
		}
	}
}

// TestConsumerMetrics checks the consumer helper's series: per-partition
// calls are summed per member, histograms observe the handler's time.
func TestConsumerMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	prom, err := partiprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	c := prom.Consumer("g", "w1")
	for i := range 5 {
		c.Processed(fmt.Sprintf("p-%d", i), 3*time.Millisecond)
	}
	c.Failed("p-1", "panic")
	c.Failed("p-2", "error")
	c.Failed("p-3", "error")
	c.DeadLettered("p-3")
	c.InFlight(4)
	c.Partitions(7)
	c.Reconfigured("consumer", 20*time.Millisecond)
	c.Reconfigured("consumer-deleted", 0)
	c.Error("floor-write", errors.New("boom"))
	w := map[string]string{"group": "g", "member": "w1"}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"parti_consumer_processed_total", w, 5},
		{"parti_consumer_handler_seconds", w, 5},
		{"parti_consumer_failed_total", map[string]string{"member": "w1", "reason": "error"}, 2},
		{"parti_consumer_failed_total", map[string]string{"member": "w1", "reason": "panic"}, 1},
		{"parti_consumer_dead_lettered_total", w, 1},
		{"parti_consumer_in_flight", w, 4},
		{"parti_consumer_partitions", w, 7},
		{"parti_consumer_reconfigured_total", w, 2},
		{"parti_consumer_reconfigure_seconds", w, 1},
		{"parti_consumer_errors_total", map[string]string{"op": "floor-write"}, 1},
	} {
		if got := value(t, reg, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v; want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestRecordsCountsGrowth checks that the cumulative counts parti reports
// become counter increments, and a count that restarts (a refold) counts
// afresh instead of going down.
func TestRecordsCountsGrowth(t *testing.T) {
	reg := prometheus.NewRegistry()
	prom, err := partiprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m := prom.Member("g", "m")
	m.Records(10, 1)
	m.Records(15, 1)
	m.Records(3, 0) // restarted
	applied := map[string]string{"result": "applied"}
	if got := value(t, reg, "parti_log_records_total", applied); got != 18 {
		t.Errorf("applied = %v; want 18 (10 + 5 + 3)", got)
	}
	if got := value(t, reg, "parti_log_records_total", map[string]string{"result": "skipped"}); got != 1 {
		t.Errorf("skipped = %v; want 1", got)
	}
}
