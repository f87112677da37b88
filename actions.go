package parti

// The member's I/O: carrying out the actions its state machine asks for
// (appends, heartbeats, verdicts, watches), off the loop goroutine, and
// reporting each result back to the incarnation that asked.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/rawmember"
)

func (m *Member) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(m.ctx, m.cfg.OpTimeout)
}

// hbCtx bounds a heartbeat, a verdict or the read of a heartbeat subject: an
// ack slower than the heartbeat interval (or the ack budget, if longer) is
// not waited for. The outcome is then unknown and the subject's last message
// settles it, so a member that was stuck in a stream election recovers
// within one interval of the stream's return instead of one OpTimeout,
// which could exceed a short expiry.
func (m *Member) hbCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(m.ctx, max(m.cfg.Timings.AckBudget, m.cfg.Timings.Heartbeat))
}

// execute carries out one action of incarnation raw; its result goes back
// to raw.
func (m *Member) execute(raw *rawmember.Member, a rawmember.Action) {
	switch a.Kind {
	case rawmember.ActAppend:
		go func() {
			ctx, cancel := m.opCtx()
			defer cancel()
			var seq uint64
			var err error
			switch {
			case len(a.Events) > 1:
				seq, err = m.app.AppendBatch(ctx, a.Events, a.Fence)
			case a.Fenced:
				seq, err = m.app.AppendFenced(ctx, a.Events[0], a.Fence)
			default:
				seq, err = m.app.Append(ctx, a.Events[0])
			}
			m.appended(err)
			if errors.Is(err, projection.ErrConflict) {
				m.cfg.Metrics.AppendConflict(a.Events[0].Type().String())
				err = fmt.Errorf("%w: %w", rawmember.ErrConflict, err)
			} else if err != nil && m.ctx.Err() != nil {
				// The member stopped (a Close or Leave that finished, or
				// Stop) while the append was in flight: its outcome no
				// longer matters here, and it may well have landed.
				m.log.Debug("append abandoned: the member stopped", "type", a.Events[0].Type().String(), "err", err)
			} else if err != nil {
				m.log.Warn("append failed", "type", a.Events[0].Type().String(), "err", err)
			}
			if err == nil {
				if d, ok := a.Events[0].(*events.AssignmentDecided); ok {
					n := 0
					for _, ev := range a.Events {
						for _, mv := range ev.(*events.AssignmentDecided).Moves {
							n += mv.Parts.Len()
						}
					}
					m.cfg.Metrics.Rebalance(d.Reason, n)
				}
			}
			m.post(func() { raw.Done(a.ID, seq, err, m.now()) })
		}()
	case rawmember.ActHeartbeat:
		subject := m.subj.Heartbeat(a.Member, a.Inc)
		go func() {
			ctx, cancel := m.hbCtx()
			defer cancel()
			seq, err := m.app.Heartbeat(ctx, subject, a.Heartbeat, a.Fence, m.cfg.HeartbeatTTL)
			m.cfg.Metrics.Heartbeat(err == nil)
			if err == nil && a.Renews > 0 {
				m.renewed(a.Renews)
			}
			m.post(func() {
				switch {
				case err != nil:
					// A refusal by the fence (10071) or by a proposal in
					// flight (10164, a stream-leader election) is the same
					// error as any other failure: a gap for the judge, and
					// the subject's last message settles it.
					m.heartbeatFailed(err)
					raw.HeartbeatFailed(a.ID, m.now(), true)
				default:
					m.heartbeatAcked()
					raw.HeartbeatAcked(a.ID, seq, m.now())
				}
			})
		}()
	case rawmember.ActReadLast:
		subject := m.subj.Heartbeat(a.Member, a.Inc)
		go func() {
			ctx, cancel := m.hbCtx()
			defer cancel()
			rec, found, err := m.app.LastOnSubject(ctx, subject)
			last := liveness.LastMessage{Empty: true}
			if found {
				last, _ = heartbeatMessage(rec)
				if v, ok := m.verdictAfter(ctx, subject, a.Member, a.Inc, a.Fence, rec.Seq); ok {
					last = v
				}
			}
			m.post(func() {
				before := raw.JunkSeen()
				raw.HeartbeatResolved(last, err == nil)
				if raw.JunkSeen() > before {
					m.noteJunk(subject, last, junkReason(last))
				}
			})
		}()
	case rawmember.ActVerdict:
		subject := m.subj.Heartbeat(a.Member, a.Inc)
		go func() {
			ctx, cancel := m.hbCtx()
			defer cancel()
			seq, err := m.app.PublishVerdict(ctx, subject, a.Verdict, a.Fence)
			if errors.Is(err, projection.ErrConflict) {
				err = fmt.Errorf("%w: %w", rawmember.ErrConflict, err)
			}
			if err == nil {
				m.cfg.Metrics.Verdict()
				m.log.Info("expired a member", "member", a.Member, "inc", a.Inc, "span_ms", a.Verdict.SpanMillis)
			}
			m.post(func() { raw.VerdictDone(a.ID, seq, err) })
		}()
	case rawmember.ActWatch:
		// Off the loop goroutine: starting or stopping a watch waits on
		// the server (an ordered consumer's stop can wait through its
		// retries while a replicated stream elects a leader), and the loop
		// must keep heartbeating and revoking meanwhile.
		gen := m.watchGen.Add(1)
		go m.rewatch(gen, raw, a.Member, a.Inc)
	case rawmember.ActUnwatch:
		m.unwatch()
	}
}

// renewed applies an acknowledged heartbeat's renewal to what the member
// enforces now (Owns, the assignments' contexts), without waiting for the
// loop: a step that takes longer than the slack between renewals (a
// 100,000-partition assignment) must not let a lease lapse whose renewal
// arrived in time. The loop's next step sets the same deadline from the
// state machine, or ends the lease if the member was revoked meanwhile.
func (m *Member) renewed(deadline time.Duration) {
	// The guard first, without m.mu: the loop may hold m.mu for a while
	// (handing out 100,000 assignments), and the renewal must not wait
	// past the deadline it replaces.
	if !m.lease.extend(deadline) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deadline > 0 {
		m.deadline = max(m.deadline, deadline)
	}
}

// unwatch stops watching a heartbeat subject, in the background.
func (m *Member) unwatch() {
	gen := m.watchGen.Add(1)
	go m.rewatch(gen, nil, "", 0)
}

// rewatch replaces the heartbeat-subject watch by one of member's
// incarnation inc (none when member is ""), unless a newer change was asked
// for meanwhile. Changes are serialised by watchMu.
func (m *Member) rewatch(gen uint64, raw *rawmember.Member, member string, inc uint64) {
	m.watchMu.Lock()
	defer m.watchMu.Unlock()
	if m.watchStop != nil {
		m.watchStop()
		m.watchStop = nil
	}
	if member == "" || gen != m.watchGen.Load() || m.ctx.Err() != nil {
		return
	}
	subject := m.subj.Heartbeat(member, inc)
	stop, err := projection.WatchSubject(m.ctx, m.js, m.stream.CachedInfo().Config.Name, subject, func(r events.Record) {
		// Every record goes to the judge, junk too: the verdict is fenced
		// on the subject's last sequence whatever that message holds.
		msg, v := heartbeatMessage(r)
		m.post(func() {
			if raw.VictimRecord(member, inc, msg, v, m.now()) {
				m.noteJunk(subject, msg, junkReason(msg))
				m.cfg.Metrics.Junk("heartbeat-subject")
			}
		})
	})
	if err != nil {
		m.log.Warn("watching a heartbeat subject failed", "member", member, "err", err)
		return
	}
	if gen != m.watchGen.Load() {
		stop() // superseded while it started
		return
	}
	m.watchStop = stop
}

// checkTail reads the log subject's last sequence once per heartbeat
// interval, in the background. Deliveries and the member's own appends are
// not enough to know how far the log goes: a tail that stopped delivering
// on a healthy connection would leave the fold frozen while the member
// heartbeats (and, leading, fails every fenced decision). The raw member
// learns the sequence, so a fold behind it for longer than the expiry stops
// heartbeating, and the projection replaces a tail that applied nothing
// between two checks.
func (m *Member) checkTail(now time.Duration) {
	if m.tailBusy || (m.tailAt != 0 && now-m.tailAt < m.cfg.Timings.Heartbeat) {
		return
	}
	m.tailBusy, m.tailAt = true, max(now, 1)
	refolds := m.refolds
	go func() {
		ctx, cancel := m.hbCtx()
		defer cancel()
		newest, stalled, err := m.proj.CheckTail(ctx)
		if stalled {
			m.cfg.Metrics.TailStalled()
		}
		m.post(func() {
			m.tailBusy = false
			if err != nil {
				m.log.Debug("reading the log's last sequence failed", "err", err)
				return
			}
			if m.refolds != refolds {
				return // read before the log went backwards: it may name a lost record
			}
			m.tailNewest = newest
			// Learned when the read began: if anything, sooner than the
			// record was there, so the member stops heartbeating no later
			// than the bound.
			m.raw().Learned(newest, now)
		})
	}()
}

func (m *Member) maybeSnapshot() {
	if m.snapBusy || !m.raw().IsLeader() {
		return
	}
	policy := rawmember.SnapshotPolicy{Every: m.cfg.SnapshotEvery, TTL: m.cfg.SnapshotTTL}
	if !policy.Due(m.proj.LastApplied(), m.lastSnap, m.now(), m.lastSnapAt) {
		return
	}
	st := m.proj.State()
	m.snapBusy = true
	go func() {
		ctx, cancel := context.WithTimeout(m.ctx, 10*m.cfg.OpTimeout)
		defer cancel()
		err := projection.WriteSnapshot(ctx, m.app, st, m.cfg.SnapshotTTL, 0)
		m.post(func() {
			m.snapBusy = false
			if err != nil {
				m.log.Warn("snapshot failed", "err", err)
				return
			}
			m.lastSnap, m.lastSnapAt = st.LastSeq, m.now()
		})
	}()
}

// appended records an append's outcome for Join's error.
func (m *Member) appended(err error) {
	m.appendMu.Lock()
	defer m.appendMu.Unlock()
	if err == nil || errors.Is(err, projection.ErrConflict) {
		m.appendOK = true
		return
	}
	if errors.Is(err, context.Canceled) && m.appendLast != nil {
		return // the member stopping; the error before says more
	}
	m.appendLast = err
}

// appends reports whether the stream answered an append, and the last
// append error.
func (m *Member) appends() (answered bool, last error) {
	m.appendMu.Lock()
	defer m.appendMu.Unlock()
	return m.appendOK, m.appendLast
}
