package parti

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/clock"
	"github.com/parti-io/parti/liveness"
	"github.com/parti-io/parti/strategy"
)

// ErrInvalidConfig is wrapped by every configuration error; the message names
// the field.
var ErrInvalidConfig = errors.New("parti: invalid config")

// Timings are the liveness timings: heartbeat interval, expiry, lease,
// margin, ack budget and reconnect wait. See package liveness for the rules
// they must satisfy.
type Timings = liveness.Timings

// Clock is a source of readings that never decrease and keep counting through
// suspend. The default reads CLOCK_BOOTTIME on Linux (Go's monotonic clock
// elsewhere); tests inject fake or skewed clocks.
type Clock interface {
	Now() time.Duration
}

// Config configures a member. The zero value of every optional field means
// its default; Validate names the field of every error.
type Config struct {
	// Group is the group's ID ([A-Za-z0-9_-], 1–64). Required.
	Group string
	// ID is the member's stable ID; empty claims the lowest free slot
	// (worker-0, worker-1, ...).
	ID string
	// Partitions is the partition set the member declares when it leads.
	// Every member of a group should be given the same set (or leave it nil
	// on all but the members that know it: only the leader declares).
	Partitions []string
	// Weights are optional partition weights, parallel to Partitions.
	Weights []uint32
	// Strategy names the assignment strategy: "sticky" (default),
	// "consistent-hash", "round-robin", "weighted-consistent-hash",
	// "placement" (labels, capacity and constraints; see Labels).
	Strategy string
	// Labels place the member for the "placement" strategy: key → value,
	// for example {"zone": "a", "region": "eu"} (at most 16; keys of
	// [A-Za-z0-9_.-/], values of [A-Za-z0-9_.-], 63 bytes each).
	Labels map[string]string
	// Capacity is the member's share of load relative to the others under
	// "placement" (0 means 1; at most 65,536).
	Capacity uint32
	// Constraints is nil or parallel to Partitions: each partition's hard
	// constraint and soft affinity under "placement" (see Constraint).
	Constraints []Constraint
	// Timings are the liveness timings (default: Production()).
	Timings Timings
	// Window batches planned joins before one rebalance (default 1 s; the
	// fast profile uses 100 ms). A crash is handled at once.
	Window time.Duration
	// ExpectedMembers closes a window early once that many members are live.
	ExpectedMembers int
	// Grace is how long a member closed for a restart keeps its ID and
	// partitions (default 30 s).
	Grace time.Duration
	// Replicas and Storage configure the stream when this member creates it
	// (defaults 1 and file storage). Production runs 3 replicas.
	Replicas int
	Storage  jetstream.StorageType
	// HeartbeatTTL is the per-message TTL of heartbeats (default 2 min, at
	// least 1 s). A space bound only.
	HeartbeatTTL time.Duration
	// SnapshotEvery makes the leader write a snapshot after that many log
	// records (default 10,000; negative disables).
	SnapshotEvery int
	// SnapshotTTL is the snapshot messages' TTL (default 1 h).
	SnapshotTTL time.Duration
	// OpTimeout bounds each publish (default: the ack budget, at least 1 s).
	OpTimeout time.Duration
	// Handler receives assignment changes (optional; see Handler).
	Handler Handler
	// Logger receives the member's logs (default: discarded).
	Logger *slog.Logger
	// Metrics receives the member's metrics (default: none).
	Metrics Metrics
	// Clock measures leases and expiries (default: the boot clock).
	Clock Clock
}

// Production returns a configuration with the production timings (heartbeat
// 2 s, expiry 6 s, lease 4 s).
func Production(group string) Config {
	return Config{Group: group, Timings: liveness.Production(), Window: time.Second, Grace: 30 * time.Second}
}

// Fast returns the fast profile used by benchmarks: heartbeat 250 ms, expiry
// 1.5 s, lease 750 ms, window 100 ms. Its margin is 750 ms.
func Fast(group string) Config {
	return Config{Group: group, Timings: liveness.Fast(), Window: 100 * time.Millisecond, Grace: 5 * time.Second}
}

func (c *Config) setDefaults() {
	if c.Timings == (Timings{}) {
		c.Timings = liveness.Production()
	}
	if c.Window == 0 {
		c.Window = time.Second
	}
	if c.Grace == 0 {
		c.Grace = 30 * time.Second
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.HeartbeatTTL == 0 {
		c.HeartbeatTTL = 2 * time.Minute
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 10000
	}
	if c.SnapshotTTL == 0 {
		c.SnapshotTTL = time.Hour
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = max(c.Timings.AckBudget, time.Second)
	}
	if c.Strategy == "" {
		c.Strategy = "sticky"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = NopMetrics{}
	}
	if c.Clock == nil {
		c.Clock = clock.Boot()
	}
}

// ConfigError is one violation Validate reports: the field it concerns and
// why. It wraps ErrInvalidConfig (and, for Timings, the *liveness.TimingsError).
type ConfigError struct {
	// Field names the Config field ("Partitions", "Timings", ...).
	Field string
	msg   string
	err   error
}

func (e *ConfigError) Error() string { return ErrInvalidConfig.Error() + ": " + e.msg }

// Unwrap returns ErrInvalidConfig and the underlying error, if any.
func (e *ConfigError) Unwrap() []error {
	if e.err != nil {
		return []error{ErrInvalidConfig, e.err}
	}
	return []error{ErrInvalidConfig}
}

func fieldErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, msg: field + " " + fmt.Sprintf(format, args...)}
}

// Validate checks the configuration (after defaults) and returns every
// violation, each a *ConfigError naming its field and wrapping
// ErrInvalidConfig (joined with errors.Join when there are several).
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	if err := events.ValidID(c.Group); err != nil {
		add(fieldErr("Group", "is invalid: %v", err))
	}
	if c.ID != "" {
		if err := events.ValidID(c.ID); err != nil {
			add(fieldErr("ID", "is invalid: %v", err))
		}
	}
	if err := c.Timings.Validate(); err != nil {
		add(&ConfigError{Field: "Timings", msg: "Timings: " + err.Error(), err: err})
	}
	weightsOK := len(c.Weights) == 0 || len(c.Weights) == len(c.Partitions)
	if !weightsOK {
		add(fieldErr("Weights", "has %d entries for %d partitions", len(c.Weights), len(c.Partitions)))
	}
	seen := make(map[string]bool, len(c.Partitions))
	for i, p := range c.Partitions {
		if err := events.ValidPartitionID(p); err != nil {
			add(fieldErr("Partitions", "[%d] is invalid: %v", i, err))
		} else if seen[p] {
			add(fieldErr("Partitions", "[%d] %q is a duplicate", i, p))
		}
		seen[p] = true
		if len(c.Weights) != 0 && weightsOK && c.Weights[i] == 0 {
			add(fieldErr("Weights", "[%d] must be ≥ 1", i))
		}
	}
	errs = append(errs, c.validatePlacement()...)
	if _, err := strategy.ByName(c.Strategy); err != nil {
		add(fieldErr("Strategy", "%q is unknown: %v", c.Strategy, err))
	}
	if c.Window < 0 {
		add(fieldErr("Window", "(%v) must be ≥ 0", c.Window))
	}
	if c.Grace < 0 {
		add(fieldErr("Grace", "(%v) must be ≥ 0", c.Grace))
	}
	if c.ExpectedMembers < 0 {
		add(fieldErr("ExpectedMembers", "(%d) must be ≥ 0", c.ExpectedMembers))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		add(fieldErr("Replicas", "(%d) must be 1 to 5", c.Replicas))
	}
	if c.HeartbeatTTL < time.Second {
		add(fieldErr("HeartbeatTTL", "(%v) must be ≥ 1s", c.HeartbeatTTL))
	} else if c.HeartbeatTTL < 2*c.Timings.Expiry {
		add(fieldErr("HeartbeatTTL", "(%v) must be ≥ 2 × Timings.Expiry (%v)", c.HeartbeatTTL, c.Timings.Expiry))
	}
	if c.SnapshotTTL < time.Second {
		add(fieldErr("SnapshotTTL", "(%v) must be ≥ 1s", c.SnapshotTTL))
	}
	if c.OpTimeout <= 0 {
		add(fieldErr("OpTimeout", "(%v) must be > 0", c.OpTimeout))
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}
