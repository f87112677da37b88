package parti

// What the application reads from a running member, and what it asks of
// it besides ending it.

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// ID returns the member's granted ID.
func (m *Member) ID() string { m.mu.Lock(); defer m.mu.Unlock(); return m.id }

// Incarnation returns the member's current incarnation.
func (m *Member) Incarnation() uint64 { m.mu.Lock(); defer m.mu.Unlock(); return m.inc }

// IsLeader reports whether this member's fold says it leads the group.
func (m *Member) IsLeader() bool { m.mu.Lock(); defer m.mu.Unlock(); return m.leader }

// Assigned returns the partitions the member may act on now, sorted by
// index. Empty while the lease is not valid.
func (m *Member) Assigned() []Assignment {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now >= m.deadline {
		return nil
	}
	out := make([]Assignment, 0, len(m.owned))
	for _, o := range m.owned {
		out = append(out, o.assignment())
	}
	sortAssignments(out)
	return out
}

// Owns reports whether the member may act on partition with token now: it
// owns it with that token and its lease is valid.
func (m *Member) Owns(partition string, token events.Token) bool {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now >= m.deadline {
		return false
	}
	o, ok := m.owned[partition]
	return ok && o.token == token
}

// leaseDeadline returns the member's lease deadline as a reading of its clock
// (Config.Clock): it may act until the clock passes it. Tests read it
// through internal/testhooks.
func (m *Member) leaseDeadline() time.Duration { m.mu.Lock(); defer m.mu.Unlock(); return m.deadline }

// State returns a copy of the member's folded state.
func (m *Member) State() *decider.State { return m.proj.State() }

// LastApplied returns the last log sequence the member's fold applied.
func (m *Member) LastApplied() uint64 { return m.proj.LastApplied() }

// WaitStable waits until the member's fold shows a stable group (every
// partition owned, nothing moving, no window) in which this member owns,
// with a valid lease, exactly what the fold gives it.
func (m *Member) WaitStable(ctx context.Context) error {
	notify, unsub := m.proj.Notify()
	defer unsub()
	t := time.NewTicker(m.cfg.Timings.Heartbeat / 4)
	defer t.Stop()
	for {
		ok := false
		id, inc := m.ID(), m.Incarnation()
		m.proj.View(func(s *decider.State) {
			if s.Phase() != decider.PhaseStable || s.Incarnation(id, inc) == nil {
				return
			}
			want := len(s.Owned(id, inc))
			m.mu.Lock()
			ok = len(m.owned) == want && m.now() < m.deadline
			m.mu.Unlock()
		})
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.done:
			return m.Err()
		case <-notify:
		case <-t.C:
		}
	}
}

// GroupSettled reports whether this member's fold shows a settled group:
// stable (every partition owned, nothing moving, no window open), n live
// members if n > 0, and nothing left for the leader to decide. Status pages,
// demos and deployment scripts wait on it.
func (m *Member) GroupSettled(n int) bool {
	ok := false
	m.proj.View(func(s *decider.State) {
		if s.Phase() != decider.PhaseStable || (n > 0 && len(s.LiveMembers()) != n) {
			return
		}
		l, found := s.Leader()
		if !found {
			return
		}
		d, err := decider.Decide(s, l.ID, l.Incarnation)
		ok = err == nil && d == nil
	})
	return ok
}

// Done is closed when the member has stopped.
func (m *Member) Done() <-chan struct{} { return m.done }

// Err returns why the member stopped (ErrStopped after Leave or Close), or
// nil while it runs.
func (m *Member) Err() error { m.mu.Lock(); defer m.mu.Unlock(); return m.err }

// SetPartitions changes the partition set this member declares when it leads.
func (m *Member) SetPartitions(ids []string, weights []uint32) error {
	c := m.cfg
	c.Partitions, c.Weights = ids, weights
	if err := c.Validate(); err != nil {
		return err
	}
	m.post(func() { m.raw().SetPartitions(ids, weights, "") })
	return nil
}

// Operate appends an operator action (drain, cordon, uncordon, pause, resume,
// force-expire, move) to the log after checking it against the current
// state; the audit shows it with By. A force-expire that names no
// incarnation is for the one this member's fold shows now.
func (m *Member) Operate(ctx context.Context, a events.OperatorAction) error {
	var ev *events.OperatorAction
	var err error
	m.proj.View(func(s *decider.State) {
		if a.Action == events.OpForceExpire && a.Incarnation == 0 {
			if cur := s.Member(a.Member); cur != nil {
				a.Incarnation = cur.Incarnation
			}
		}
		ev, err = decider.Operator(s, a)
	})
	if err != nil {
		return err
	}
	_, err = m.app.Append(ctx, ev)
	return err
}

func sortAssignments(a []Assignment) {
	slices.SortFunc(a, func(x, y Assignment) int { return cmp.Compare(x.Index, y.Index) })
}
