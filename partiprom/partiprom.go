// Package partiprom reports parti members and consumer helpers to
// Prometheus. It implements parti.Metrics and consumer.Metrics on
// github.com/prometheus/client_golang and registers its collectors on the
// caller's registry; the parti core imports no Prometheus code.
//
// Every series carries the labels group and member. Partition IDs never
// become label values (a group may have 100,000 of them): per-partition
// counts of the consumer helper are summed per member.
//
//	reg := prometheus.NewRegistry()
//	prom, err := partiprom.New(reg)
//	...
//	cfg.Metrics = prom.Member("orders", "worker-1")
//	m, err := parti.Join(ctx, js, cfg)
//
// The metrics, and what to alert on, are listed in the repository's README.
package partiprom

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/consumer"
)

// phases are the values parti.Metrics.Phase reports; parti_phase has one
// series per phase, 1 for the current one.
var phases = []string{"cold-start", "scaling", "rebalancing", "emergency", "stable"}

// Collectors holds the metric vectors registered on one registry. One
// Collectors serves any number of members and helpers in the process: each
// gets its own series through Member and Consumer.
type Collectors struct {
	phase          *prometheus.GaugeVec
	members        *prometheus.GaugeVec
	owned          *prometheus.GaugeVec
	rebalances     *prometheus.CounterVec
	moves          *prometheus.CounterVec
	records        *prometheus.CounterVec
	conflicts      *prometheus.CounterVec
	foldLag        *prometheus.GaugeVec
	foldLagSeconds *prometheus.GaugeVec
	heartbeats     *prometheus.CounterVec
	leaseLost      *prometheus.CounterVec
	leaseRemaining *prometheus.GaugeVec
	verdicts       *prometheus.CounterVec
	junk           *prometheus.CounterVec
	tailStalls     *prometheus.CounterVec

	processed    *prometheus.CounterVec
	handlerTime  *prometheus.HistogramVec
	failed       *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	inFlight     *prometheus.GaugeVec
	partitions   *prometheus.GaugeVec
	reconfigs    *prometheus.CounterVec
	reconfPause  *prometheus.HistogramVec
	errors       *prometheus.CounterVec
}

// New creates the collectors and registers them on reg. It fails (wrapping
// prometheus.AlreadyRegisteredError) when reg already holds them: create
// one Collectors per registry and share it.
func New(reg prometheus.Registerer) (*Collectors, error) {
	id := []string{"group", "member"}
	with := func(extra ...string) []string { return append(append([]string(nil), id...), extra...) }
	gauge := func(name, help string, labels []string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	c := &Collectors{
		phase:          gauge("parti_phase", "The group's phase as this member's fold sees it: 1 for the current phase, 0 for the others.", with("phase")),
		members:        gauge("parti_members", "Live members of the group as this member's fold sees them.", id),
		owned:          gauge("parti_owned_partitions", "Partitions this member may act on now.", id),
		rebalances:     counter("parti_rebalances_total", "Assignment decisions this member appended as the leader, by reason.", with("reason")),
		moves:          counter("parti_partition_moves_total", "Partitions moved by the decisions this member appended as the leader.", id),
		records:        counter("parti_log_records_total", "Log records this member's fold read: applied, or skipped as malformed or unknown.", with("result")),
		conflicts:      counter("parti_append_conflicts_total", "Fenced appends the stream refused because the log had moved on, by record type.", with("type")),
		foldLag:        gauge("parti_fold_lag_records", "Known log records this member's fold has not applied yet.", id),
		foldLagSeconds: gauge("parti_fold_lag_seconds", "For how long the fold has had known log records it has not applied (0 when caught up).", id),
		heartbeats:     counter("parti_heartbeats_total", "Heartbeats of this member, by result: ok (acknowledged) or failed.", with("result")),
		leaseLost:      counter("parti_lease_lost_total", "Lapses of this member's lease: it stopped acting on its partitions until a heartbeat was acknowledged again.", id),
		leaseRemaining: gauge("parti_lease_remaining_seconds", "How long this member may still act on its partitions (0 without a valid lease).", id),
		verdicts:       counter("parti_expiry_verdicts_total", "Expiry verdicts this member appended as a judge of a silent member.", id),
		junk:           counter("parti_junk_messages_total", "Messages that are not what a member writes, seen where this member reads, by where.", with("where")),
		tailStalls:     counter("parti_tail_stalls_total", "Stalls of this member's log tail (newer log records, none applied for a heartbeat interval); each started a new tail.", id),

		processed:    counter("parti_consumer_processed_total", "Messages handled successfully and settled.", id),
		handlerTime:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "parti_consumer_handler_seconds", Help: "Time the handler took for messages it handled successfully.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, id),
		failed:       counter("parti_consumer_failed_total", "Failed handler attempts, by reason (error, panic, permanent).", with("reason")),
		deadLettered: counter("parti_consumer_dead_lettered_total", "Messages moved to the dead-letter subject.", id),
		inFlight:     gauge("parti_consumer_in_flight", "Messages being handled (or unsettled in manual-ack mode) now.", id),
		partitions:   gauge("parti_consumer_partitions", "Partitions being consumed now.", id),
		reconfigs:    counter("parti_consumer_reconfigured_total", "Consumers started or replaced, by reason (consumer, consumer-deleted, consumer-changed).", with("reason")),
		reconfPause:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "parti_consumer_reconfigure_seconds", Help: "Time it took to start a consumer.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}, id),
		errors:       counter("parti_consumer_errors_total", "Failed operations of the helper, by operation.", with("op")),
	}
	for _, col := range c.all() {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("partiprom: register: %w", err)
		}
	}
	return c, nil
}

func (c *Collectors) all() []prometheus.Collector {
	return []prometheus.Collector{
		c.phase, c.members, c.owned, c.rebalances, c.moves, c.records, c.conflicts,
		c.foldLag, c.foldLagSeconds, c.heartbeats, c.leaseLost, c.leaseRemaining,
		c.verdicts, c.junk, c.tailStalls,
		c.processed, c.handlerTime, c.failed, c.deadLettered, c.inFlight,
		c.partitions, c.reconfigs, c.reconfPause, c.errors,
	}
}

// Member returns the parti.Metrics of one member: set it as
// parti.Config.Metrics. Pass the member's ID when the configuration names
// one; a member that claims a free slot may pass the process's name.
func (c *Collectors) Member(group, member string) parti.Metrics {
	return &memberMetrics{c: c, group: group, member: member}
}

// Consumer returns the consumer.Metrics of one consumer helper: set it as
// consumer.Config.Metrics.
func (c *Collectors) Consumer(group, member string) consumer.Metrics {
	return &consumerMetrics{c: c, group: group, member: member}
}

type memberMetrics struct {
	parti.NopMetrics // so that methods added to parti.Metrics later compile
	c                *Collectors
	group, member    string

	mu               sync.Mutex
	applied, skipped uint64 // the last cumulative counts Records reported
}

// grow turns a cumulative count into a counter increment; a count that went
// down (a refold from a snapshot restarted it) counts afresh.
func grow(last *uint64, now uint64) float64 {
	d := now
	if now >= *last {
		d = now - *last
	}
	*last = now
	return float64(d)
}

func (m *memberMetrics) Phase(p string) {
	known := false
	for _, ph := range phases {
		v := 0.0
		if ph == p {
			v, known = 1, true
		}
		m.c.phase.WithLabelValues(m.group, m.member, ph).Set(v)
	}
	if !known && p != "" {
		m.c.phase.WithLabelValues(m.group, m.member, p).Set(1)
	}
}

func (m *memberMetrics) Members(n int) {
	m.c.members.WithLabelValues(m.group, m.member).Set(float64(n))
}
func (m *memberMetrics) Owned(n int) { m.c.owned.WithLabelValues(m.group, m.member).Set(float64(n)) }

func (m *memberMetrics) Rebalance(reason string, moves int) {
	m.c.rebalances.WithLabelValues(m.group, m.member, reason).Inc()
	m.c.moves.WithLabelValues(m.group, m.member).Add(float64(moves))
}

func (m *memberMetrics) Records(applied, skipped uint64) {
	m.mu.Lock()
	da, ds := grow(&m.applied, applied), grow(&m.skipped, skipped)
	m.mu.Unlock()
	m.c.records.WithLabelValues(m.group, m.member, "applied").Add(da)
	m.c.records.WithLabelValues(m.group, m.member, "skipped").Add(ds)
}

func (m *memberMetrics) AppendConflict(kind string) {
	m.c.conflicts.WithLabelValues(m.group, m.member, kind).Inc()
}

func (m *memberMetrics) FoldLag(n uint64) {
	m.c.foldLag.WithLabelValues(m.group, m.member).Set(float64(n))
}

func (m *memberMetrics) FoldLagTime(d time.Duration) {
	m.c.foldLagSeconds.WithLabelValues(m.group, m.member).Set(d.Seconds())
}

func (m *memberMetrics) Heartbeat(ok bool) {
	r := "failed"
	if ok {
		r = "ok"
	}
	m.c.heartbeats.WithLabelValues(m.group, m.member, r).Inc()
}

func (m *memberMetrics) LeaseLost() { m.c.leaseLost.WithLabelValues(m.group, m.member).Inc() }

func (m *memberMetrics) LeaseRemaining(d time.Duration) {
	m.c.leaseRemaining.WithLabelValues(m.group, m.member).Set(d.Seconds())
}

func (m *memberMetrics) Verdict() { m.c.verdicts.WithLabelValues(m.group, m.member).Inc() }

func (m *memberMetrics) Junk(where string) {
	m.c.junk.WithLabelValues(m.group, m.member, where).Inc()
}

func (m *memberMetrics) TailStalled() { m.c.tailStalls.WithLabelValues(m.group, m.member).Inc() }

type consumerMetrics struct {
	consumer.NopMetrics
	c             *Collectors
	group, member string
}

func (m *consumerMetrics) Processed(_ string, took time.Duration) {
	m.c.processed.WithLabelValues(m.group, m.member).Inc()
	m.c.handlerTime.WithLabelValues(m.group, m.member).Observe(took.Seconds())
}

func (m *consumerMetrics) Failed(_ string, reason string) {
	m.c.failed.WithLabelValues(m.group, m.member, reason).Inc()
}

func (m *consumerMetrics) DeadLettered(string) {
	m.c.deadLettered.WithLabelValues(m.group, m.member).Inc()
}

func (m *consumerMetrics) InFlight(n int) {
	m.c.inFlight.WithLabelValues(m.group, m.member).Set(float64(n))
}

func (m *consumerMetrics) Partitions(n int) {
	m.c.partitions.WithLabelValues(m.group, m.member).Set(float64(n))
}

func (m *consumerMetrics) Reconfigured(reason string, pause time.Duration) {
	m.c.reconfigs.WithLabelValues(m.group, m.member, reason).Inc()
	if reason == "consumer" {
		m.c.reconfPause.WithLabelValues(m.group, m.member).Observe(pause.Seconds())
	}
}

func (m *consumerMetrics) Error(op string, _ error) {
	m.c.errors.WithLabelValues(m.group, m.member, op).Inc()
}
