package parti

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/parti-io/parti/projection"
)

// ErrNotLive and ErrNotReady are wrapped by the errors Member.Live and
// Member.Ready return (and the consumer helper's): the message says why.
var (
	ErrNotLive  = errors.New("not live")
	ErrNotReady = errors.New("not ready")
)

// health is what the member's loop tells the health checks, at every step.
type health struct {
	mu         sync.Mutex
	stepped    bool
	lastStep   time.Duration // the loop's last step, on the member's clock
	lagSince   time.Duration // since when the fold is behind (valid if lagging)
	lagging    bool
	lagPaused  bool   // behind for longer than the expiry: heartbeats paused
	lagApplied uint64 // the fold's last applied sequence when lagging began
	lastApply  time.Duration
	hadLease   bool

	lostAt    time.Duration // when the lease lapsed (valid while lapsed)
	lapsed    bool
	hbFails   int           // heartbeats failed in a row
	hbWarned  time.Duration // when the last warning about them was logged
	hbLastErr error
}

// liveFoldStuck is how many expiries a fold may stay behind without
// applying a record before the member says it is not live: a restart then
// refolds from the snapshot, while a fold that only runs late (catching up
// a long history) keeps going.
const liveFoldStuck = 4

// observeHealth records a step of the loop (its goroutine only): the time,
// the fold's progress and the lease, and reports the lease's lapse and the
// fold's lag in time to Metrics.
func (m *Member) observeHealth(now time.Duration, st projection.Stats) {
	m.mu.Lock()
	deadline, granted := m.deadline, m.gotGrant
	m.mu.Unlock()
	// Behind as the raw member counts it: the oldest known log sequence
	// not applied (from deliveries, own appends and the tail checks), and
	// since when it is known.
	behindSeq, since, behind := m.raw().Behind()
	exp := m.cfg.Timings.Expiry
	h := &m.health
	h.mu.Lock()
	h.stepped, h.lastStep = true, now
	switch {
	case !behind:
		h.lagging = false
	case !h.lagging:
		h.lagging, h.lagApplied, h.lastApply = true, st.LastApplied, now
	case st.LastApplied != h.lagApplied:
		h.lagApplied, h.lastApply = st.LastApplied, now
	}
	h.lagSince = since
	var lag time.Duration
	if h.lagging {
		lag = max(now-h.lagSince, 0)
	}
	paused := h.lagging && lag > exp
	pauseStarts, pauseEnds := paused && !h.lagPaused, !paused && h.lagPaused
	h.lagPaused = paused
	valid := granted && now < deadline
	// A member that closes or leaves stops heartbeating on purpose: its
	// lease ending then is no lapse.
	quitting := m.drv.Ending()
	lost := h.hadLease && !valid && !quitting
	back := valid && h.lapsed
	var lapsedFor time.Duration
	if lost {
		h.lapsed, h.lostAt = true, now
	}
	if back {
		h.lapsed, lapsedFor = false, now-h.lostAt
	}
	fails, lastErr := h.hbFails, h.hbLastErr
	h.hadLease = valid
	h.mu.Unlock()
	if lost {
		m.log.Error("lease lapsed: this member stopped acting on its partitions until a heartbeat is acknowledged again",
			"heartbeats_failed_in_a_row", fails, "last_error", lastErr, "expiry", m.cfg.Timings.Expiry)
	}
	if back {
		m.log.Info("lease back: heartbeats are acknowledged again", "lapsed_for", lapsedFor.Round(time.Millisecond))
	}
	if pauseStarts {
		m.log.Warn("the fold is behind the log for longer than the expiry: heartbeats paused until it catches up",
			"applied", st.LastApplied, "behind_at", behindSeq, "for", lag.Round(time.Millisecond), "expiry", exp)
	}
	if pauseEnds {
		m.log.Info("the fold caught up with the log: heartbeats resume", "applied", st.LastApplied)
	}
	m.cfg.Metrics.FoldLagTime(lag)
	if valid {
		m.cfg.Metrics.LeaseRemaining(deadline - now)
	} else {
		m.cfg.Metrics.LeaseRemaining(0)
	}
	if lost {
		m.cfg.Metrics.LeaseLost()
	}
}

// Live reports whether the member runs: nil when its loop steps and its
// fold is not stuck, otherwise an error wrapping ErrNotLive that says why.
// A member that is not live does not recover by itself: restart the
// process (a Kubernetes liveness probe does).
//
// The loop steps at least every heartbeat interval / 4; it counts as stuck
// when it has not stepped for longer than the expiry. The fold counts as
// stuck when it has had log records to apply and applied none for longer
// than four expiries.
func (m *Member) Live() error {
	select {
	case <-m.done:
		err := m.Err()
		if err == nil {
			err = ErrStopped
		}
		return fmt.Errorf("%w: the member stopped: %w", ErrNotLive, err)
	default:
	}
	now := m.now()
	exp := m.cfg.Timings.Expiry
	h := &m.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stepped && now-h.lastStep > exp {
		return fmt.Errorf("%w: the member's loop has not run for %v (expiry %v)", ErrNotLive, (now - h.lastStep).Round(time.Millisecond), exp)
	}
	if h.lagging && now-h.lastApply > liveFoldStuck*exp {
		return fmt.Errorf("%w: the fold has applied no log record for %v although the log holds newer ones (at seq %d)", ErrNotLive, (now - h.lastApply).Round(time.Millisecond), h.lagApplied)
	}
	return nil
}

// Ready reports whether the member can do its work: nil when it is live,
// holds a valid lease, and its fold has caught up with the log within the
// expiry (the bound within which a member keeps heartbeating: the log's
// last sequence is read every heartbeat interval, so a tail that stopped
// delivering counts too); otherwise an error wrapping ErrNotReady that says
// why. Readiness comes and goes
// (a stream election, a full disk): a Kubernetes readiness probe takes the
// process out of service meanwhile.
func (m *Member) Ready() error {
	if err := m.Live(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	now := m.now()
	m.mu.Lock()
	deadline, granted := m.deadline, m.gotGrant
	m.mu.Unlock()
	if !granted {
		return fmt.Errorf("%w: the member's claim is not granted yet", ErrNotReady)
	}
	exp := m.cfg.Timings.Expiry
	h := &m.health
	h.mu.Lock()
	lagging, since := h.lagging, h.lagSince
	h.mu.Unlock()
	if lagging && now-since > exp {
		return fmt.Errorf("%w: the fold has been behind the log for %v (more than the expiry %v: heartbeats paused)", ErrNotReady, (now - since).Round(time.Millisecond), exp)
	}
	if now >= deadline {
		return fmt.Errorf("%w: the member holds no valid lease (its heartbeats are not acknowledged: is the stream accepting writes?)", ErrNotReady)
	}
	return nil
}

// HealthChecker is what HealthHandler probes: a Member, a consumer helper,
// or anything else with a liveness and a readiness answer.
type HealthChecker interface {
	// Live returns nil when the process should keep running.
	Live() error
	// Ready returns nil when the process should receive work.
	Ready() error
}

// HealthHandler serves Kubernetes-style probes for checks: GET /livez
// answers 200 "ok" when every check is live and 503 with one line per
// failing check otherwise; GET /readyz does the same for readiness. Any
// other path is 404. The handler may be mounted under a prefix with
// http.StripPrefix; it holds no state and is safe for concurrent use.
func HealthHandler(checks ...HealthChecker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var probe func(HealthChecker) error
		switch r.URL.Path {
		case "/livez":
			probe = HealthChecker.Live
		case "/readyz":
			probe = HealthChecker.Ready
		default:
			http.NotFound(w, r)
			return
		}
		var failed []error
		for _, c := range checks {
			if err := probe(c); err != nil {
				failed = append(failed, err)
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			for _, err := range failed {
				fmt.Fprintln(w, err)
			}
			return
		}
		fmt.Fprintln(w, "ok")
	})
}

// hbWarnAfter is how many heartbeats in a row must fail before the member
// warns: one lost heartbeat is routine (a stream election), more are not.
const hbWarnAfter = 2

// heartbeatFailed records a failed heartbeat (the loop's goroutine) and
// warns when they keep failing, at most once per expiry.
func (m *Member) heartbeatFailed(err error) {
	now := m.now()
	h := &m.health
	h.mu.Lock()
	h.hbFails++
	h.hbLastErr = err
	n := h.hbFails
	warn := n >= hbWarnAfter && (n == hbWarnAfter || now-h.hbWarned >= m.cfg.Timings.Expiry)
	if warn {
		h.hbWarned = now
	}
	h.mu.Unlock()
	if warn {
		m.log.Warn("heartbeats keep failing: is the stream accepting writes?", "failed_in_a_row", n, "err", err)
	} else {
		m.log.Debug("heartbeat failed", "err", err)
	}
}

// heartbeatAcked records an acknowledged heartbeat.
func (m *Member) heartbeatAcked() {
	h := &m.health
	h.mu.Lock()
	n := h.hbFails
	h.hbFails, h.hbLastErr = 0, nil
	h.mu.Unlock()
	if n >= hbWarnAfter {
		m.log.Info("heartbeats acknowledged again", "after_failures", n)
	}
}
