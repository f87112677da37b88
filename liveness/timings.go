package liveness

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidTimings is wrapped by every error of [Timings.Validate],
// [JudgeConfig.Validate] and [NewJudge]; match it with errors.Is.
var ErrInvalidTimings = errors.New("liveness: invalid timings")

// TimingsError reports one violated timing constraint. It wraps
// [ErrInvalidTimings]; its message names the field and the values, e.g.
// "liveness: Lease (4.5s) must be < Expiry − Margin (4s)".
type TimingsError struct {
	// Field is the name of the offending field, e.g. "Lease".
	Field string
	// Rule is the violated constraint: one of the TimingsRule constants
	// (a field can break several, as Lease can).
	Rule TimingsRule
	msg  string
}

// TimingsRule names a constraint of [Timings.Validate].
type TimingsRule string

// The constraints [Timings.Validate] checks.
const (
	// TimingsPositive: every field > 0.
	TimingsPositive TimingsRule = "positive"
	// TimingsLeaseBelowExpiry: Lease < Expiry − Margin, strictly.
	TimingsLeaseBelowExpiry TimingsRule = "lease-below-expiry-margin"
	// TimingsLeaseAboveHeartbeat: Lease > Heartbeat + AckBudget.
	TimingsLeaseAboveHeartbeat TimingsRule = "lease-above-heartbeat-ack"
	// TimingsReconnectBeforeExpiry: ReconnectWait + Heartbeat < Expiry.
	TimingsReconnectBeforeExpiry TimingsRule = "reconnect-before-expiry"
)

// Error returns "liveness: " followed by the violated constraint.
func (e *TimingsError) Error() string { return "liveness: " + e.msg }

// Unwrap makes errors.Is(err, ErrInvalidTimings) true.
func (e *TimingsError) Unwrap() error { return ErrInvalidTimings }

// Timings are the durations of the liveness protocol. All are measured on
// each member's own boot clock (CLOCK_BOOTTIME on Linux). Use a profile
// ([Production], [Fast], [Test]) or set every field and call
// [Timings.Validate].
type Timings struct {
	// Heartbeat is the interval between a member's heartbeats.
	Heartbeat time.Duration
	// Expiry is how long a judge's count must exceed before it expires its
	// victim.
	Expiry time.Duration
	// Lease is how long a member may act after sending a heartbeat that was
	// acknowledged.
	Lease time.Duration
	// Margin is the longest process pause (GC, a frozen VM, a suspended
	// laptop counts too: the clock runs through suspend) the no-overlap
	// guarantee tolerates: a member that checked its lease just before a
	// pause shorter than Margin has stopped before a judge can expire it.
	// Beyond it, fencing tokens protect the application's storage.
	Margin time.Duration
	// AckBudget is the p99 time from sending a heartbeat to its ack, a
	// configured budget checked statically. An ack slower than this at run
	// time just lets the lease lapse, which is safe.
	AckBudget time.Duration
	// ReconnectWait is the NATS client's wait between reconnect attempts. A
	// member that reconnects late must still heartbeat before it expires.
	ReconnectWait time.Duration
}

// Production is the production profile of DESIGN: heartbeat 2 s, expiry 6 s,
// lease 3.5 s, margin 2 s, ack budget 1 s, reconnect wait 2 s (the NATS
// client's default). The lease sits strictly below expiry − margin (4 s), as
// DESIGN rule 4 requires.
func Production() Timings {
	return Timings{
		Heartbeat:     2 * time.Second,
		Expiry:        6 * time.Second,
		Lease:         3500 * time.Millisecond,
		Margin:        2 * time.Second,
		AckBudget:     1 * time.Second,
		ReconnectWait: 2 * time.Second,
	}
}

// Fast is the benchmark profile of DESIGN: heartbeat 250 ms, expiry 1.5 s,
// lease 700 ms, margin 750 ms, ack budget 250 ms, reconnect wait 500 ms. Its
// margin is below the 1 s integration tests require.
func Fast() Timings {
	return Timings{
		Heartbeat:     250 * time.Millisecond,
		Expiry:        1500 * time.Millisecond,
		Lease:         700 * time.Millisecond,
		Margin:        750 * time.Millisecond,
		AckBudget:     250 * time.Millisecond,
		ReconnectWait: 500 * time.Millisecond,
	}
}

// Test is the integration-test profile: faster than [Production] with a
// margin of at least 1 s, as DESIGN requires of test profiles: heartbeat
// 500 ms, expiry 3 s, lease 1.4 s, margin 1.5 s, ack budget 500 ms, reconnect
// wait 500 ms.
func Test() Timings {
	return Timings{
		Heartbeat:     500 * time.Millisecond,
		Expiry:        3 * time.Second,
		Lease:         1400 * time.Millisecond,
		Margin:        1500 * time.Millisecond,
		AckBudget:     500 * time.Millisecond,
		ReconnectWait: 500 * time.Millisecond,
	}
}

// Validate checks the constraints under which DESIGN rules 2 and 4 hold and
// returns every violation, each a [*TimingsError] wrapping
// [ErrInvalidTimings] (joined with errors.Join when there are several):
//
//   - every field > 0 (if one is not, only these are reported);
//   - Lease < Expiry − Margin, strictly (DESIGN rule 4): the lease runs out
//     more than Margin before a judge can expire the member. At equality a
//     pause of exactly Margin, or clocks off by a hair in the unlucky
//     directions, would be safe only thanks to the verdict-to-removal
//     latency;
//   - Lease > Heartbeat + AckBudget: a healthy member renews before its lease
//     runs out;
//   - ReconnectWait + Heartbeat < Expiry: a healthy member that reconnects
//     late after an outage still heartbeats before a judge's restarted count
//     expires it.
func (t Timings) Validate() error {
	var errs []error
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, &TimingsError{Field: name, Rule: TimingsPositive, msg: fmt.Sprintf("%s (%v) must be > 0", name, d)})
		}
	}
	positive("Heartbeat", t.Heartbeat)
	positive("Expiry", t.Expiry)
	positive("Lease", t.Lease)
	positive("Margin", t.Margin)
	positive("AckBudget", t.AckBudget)
	positive("ReconnectWait", t.ReconnectWait)
	if len(errs) > 0 {
		return joinErrs(errs)
	}
	if !(t.Lease < t.Expiry-t.Margin) {
		errs = append(errs, &TimingsError{Field: "Lease", Rule: TimingsLeaseBelowExpiry, msg: fmt.Sprintf(
			"Lease (%v) must be < Expiry − Margin (%v)", t.Lease, t.Expiry-t.Margin)})
	}
	if !(t.Lease > t.Heartbeat+t.AckBudget) {
		errs = append(errs, &TimingsError{Field: "Lease", Rule: TimingsLeaseAboveHeartbeat, msg: fmt.Sprintf(
			"Lease (%v) must be > Heartbeat + AckBudget (%v)", t.Lease, t.Heartbeat+t.AckBudget)})
	}
	if !(t.ReconnectWait+t.Heartbeat < t.Expiry) {
		errs = append(errs, &TimingsError{Field: "ReconnectWait", Rule: TimingsReconnectBeforeExpiry, msg: fmt.Sprintf(
			"ReconnectWait + Heartbeat (%v) must be < Expiry (%v)", t.ReconnectWait+t.Heartbeat, t.Expiry)})
	}
	return joinErrs(errs)
}

// joinErrs returns nil, the only error, or all of them joined.
func joinErrs(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	default:
		return errors.Join(errs...)
	}
}

// JudgeConfig returns the [JudgeConfig] of this profile: the same Expiry, and
// MaxGap = Heartbeat + AckBudget, the longest spacing of healthy acks.
func (t Timings) JudgeConfig() JudgeConfig {
	return JudgeConfig{Expiry: t.Expiry, MaxGap: t.Heartbeat + t.AckBudget}
}
