package sim

import (
	"fmt"
	"slices"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/rawmember"
)

// --- faults and phases ---------------------------------------------------

func (w *world) alive() []*proc {
	var out []*proc
	for _, p := range w.procs {
		if !p.dead {
			out = append(out, p)
		}
	}
	return out
}

func (w *world) pick(ps []*proc) *proc {
	if len(ps) == 0 {
		return nil
	}
	return ps[w.rng.IntN(len(ps))]
}

// granted returns the running (not paused) processes whose member was
// granted and that are neither closing nor leaving.
func (w *world) granted() []*proc {
	var out []*proc
	for _, p := range w.procs {
		if _, _, ok := p.m.Identity(); ok && !p.dead && !p.closing && !p.leaving && p.pausedUntil <= w.T && p.m.Stopped() == rawmember.NotStopped {
			out = append(out, p)
		}
	}
	return out
}

func (w *world) phaseStep(dt time.Duration) {
	// Scheduled starts: restarts and joins (and, in the first calm phase,
	// the initial members).
	for i := 0; i < len(w.pending); {
		if ps := w.pending[i]; ps.at <= w.T {
			w.pending = slices.Delete(w.pending, i, i+1)
			w.start(ps.id)
			continue
		}
		i++
	}
	switch w.ph {
	case phaseChaos:
		if w.T >= w.phaseEnd {
			w.ph = phaseDrain
			w.tracef("phase drain")
			return
		}
		w.inject(dt)
	case phaseDrain:
		if w.faultsOngoing() {
			return
		}
		// Starts scheduled by the chaos happen now; from here on nothing
		// is injected.
		for _, ps := range w.pending {
			w.start(ps.id)
		}
		w.pending = nil
		// Keep a group to check: at least two processes that stay.
		staying := 0
		for _, p := range w.alive() {
			if !p.leaving && !p.closing {
				staying++
			}
		}
		for ; staying < 2; staying++ {
			w.start(w.newID())
		}
		w.ph = phaseCalm
		w.calmStart = w.T
		w.quietBound = w.bound()
		w.calmDead = len(w.deadMembers())
		w.phaseEnd = w.T + w.quietBound + w.dur(time.Second, 6*time.Second)
		w.stats.CalmPhases++
		w.tracef("phase calm, liveness checked from %v", w.T+w.quietBound)
	case phaseCalm:
		if w.T >= w.phaseEnd {
			w.ph = phaseChaos
			w.phaseEnd = w.T + w.dur(5*time.Second, 25*time.Second)
			w.tracef("phase chaos until %v", w.phaseEnd)
		}
	}
}

// faultsOngoing reports whether a pause, an isolation, a fold stall or a
// stream stall is still running.
func (w *world) faultsOngoing() bool {
	if w.st.stalled(w.T) || len(w.held) > 0 {
		return true
	}
	for _, p := range w.procs {
		if p.dead {
			continue
		}
		if p.pausedUntil > w.T || p.isoUntil > w.T || p.tailUntil > w.T || p.lagTill > w.T {
			return true
		}
	}
	return false
}

// bound is how long after the start of a quiet period every partition must
// be owned by a live member that believes it owns it: window + expiry + one
// decision round + slack, with one more expiry and round for every member
// the fold still holds that no process backs (dead members adjacent in the
// ring are expired one after the other) and the grace when a closed member
// may be waiting for its grace to end.
func (w *world) bound() time.Duration {
	t := w.opt.Timings
	round := 1500 * time.Millisecond
	slack := 2500 * time.Millisecond
	dead, closing := 0, false
	for _, id := range w.auth.Order {
		m := w.auth.Members[id]
		if m.Closing {
			closing = true
		}
		if p := w.byNonce[m.Nonce]; p == nil || p.dead {
			dead++
		}
	}
	// Hand-offs: a revoked partition is let go only once its handler
	// returned (rawmember.Handoff), and here its release lands one log
	// round trip after another (about 60 ms each in the simulated stream,
	// measured), so a leave or a rebalance right at the start of the calm
	// phase takes time in proportion to the partitions it moves.
	handoff := time.Duration(len(w.auth.Partitions)) * 60 * time.Millisecond
	// The applications' own backlog: handler calls are made one at a time
	// and a Revoked call finishes its partition for up to appFinish (app),
	// so revocations still queued when the calm phase starts (a few
	// re-declarations in a row queue hundreds) delay the hand-offs behind
	// them; processes drain their queues in parallel.
	var backlog time.Duration
	for _, p := range w.procs {
		if p.dead {
			continue
		}
		n := 0
		for _, c := range p.calls {
			if c.Revoke {
				n++
			}
		}
		backlog = max(backlog, time.Duration(n)*appFinish)
	}
	b := w.opt.Window + t.Expiry + round + slack + handoff + backlog + time.Duration(dead)*(t.Expiry+round)
	if closing {
		b += w.opt.Grace
	}
	return b
}

func (w *world) inject(dt time.Duration) {
	o := w.opt
	if w.perStep(o.CrashRate, dt) {
		if p := w.pick(w.alive()); p != nil {
			w.crash(p, "crash")
			if w.chance(0.6) {
				w.pending = append(w.pending, pendingStart{at: w.T + w.dur(100*time.Millisecond, 6*time.Second), id: p.id})
			}
		}
	}
	if w.perStep(o.PauseRate, dt) {
		// A process pauses only once it ran since its last pause (two
		// pauses back to back would be one longer pause).
		if p := w.pick(w.alive()); p != nil && p.pausedUntil <= w.T && p.lastRun > p.pausedUntil {
			var d time.Duration
			switch {
			case o.LongPauses && w.chance(0.3):
				d = w.dur(o.LongPauseMin, o.LongPauseMax)
			case w.chance(0.5):
				d = w.dur(0, 300*time.Millisecond)
			default:
				d = w.dur(o.MaxPause*2/3, o.MaxPause)
			}
			p.pausedUntil = w.T + d
			p.healthy = false
			w.stats.Pauses++
			w.tracef("pause %s for %v", p.name(), d)
		}
	}
	if w.perStep(o.IsolateRate, dt) {
		if p := w.pick(w.alive()); p != nil && p.isoUntil <= w.T {
			d := w.dur(500*time.Millisecond, 6*time.Second)
			p.isoUntil = w.T + d
			p.tailUntil = p.isoUntil + w.dur(0, 2*time.Second)
			p.healthy = false
			w.stats.Isolations++
			w.tracef("isolate %s for %v (tail %v)", p.name(), d, p.tailUntil-w.T)
		}
	}
	if w.perStep(o.StallRate, dt) && !w.st.stalled(w.T) {
		d := w.dur(200*time.Millisecond, o.MaxStall)
		if o.LongOutages && w.chance(0.1) {
			d = w.dur(o.TTL+time.Second, o.TTL+8*time.Second)
		}
		w.st.stallUntil = w.T + d
		w.stats.Stalls++
		w.tracef("stream stall for %v", d)
	}
	if w.perStep(o.CloseRate, dt) {
		if p := w.pick(w.granted()); p != nil {
			w.beginClose(p)
			at := w.T + w.dur(200*time.Millisecond, 3500*time.Millisecond)
			if w.chance(0.25) {
				at = w.T + w.dur(o.Grace+time.Second, o.Grace+4*time.Second)
			}
			w.pending = append(w.pending, pendingStart{at: at, id: p.id})
			w.tracef("close %s, restart at %v", p.name(), at)
			w.flush(p)
		}
	}
	if w.perStep(o.LeaveRate, dt) {
		if p := w.pick(w.granted()); p != nil {
			w.beginLeave(p)
			w.tracef("leave %s", p.name())
			if w.chance(0.5) {
				w.pending = append(w.pending, pendingStart{at: w.T + w.dur(time.Second, 10*time.Second), id: p.id})
			}
			w.flush(p)
		}
	}
	if w.perStep(o.JoinRate, dt) && len(w.alive())+len(w.pending) < o.MaxProcs {
		w.stats.Joins++
		w.start(w.newID())
	}
	if w.perStep(o.DeclareRate, dt) {
		n := o.MinPartitions + w.rng.IntN(o.MaxPartitions-o.MinPartitions+1)
		perm := w.rng.Perm(len(w.universe))[:n]
		slices.Sort(perm)
		ids := make([]string, n)
		for i, k := range perm {
			ids[i] = w.universe[k]
		}
		w.partitions = ids
		w.stats.Declarations++
		if l, ok := w.auth.Leader(); ok && w.chance(0.3) {
			if p := w.byNonce[l.Nonce]; p != nil && !p.dead {
				w.setPartitions(p.m, ids)
				w.tracef("set %d partitions on the leader %s only", n, p.name())
			}
		} else {
			for _, p := range w.alive() {
				w.setPartitions(p.m, ids)
			}
			w.tracef("set %d partitions on every member", n)
		}
	}
	if w.perStep(o.SkewRate, dt) {
		j := w.dur(0, 2*o.MaxSkewStep) - o.MaxSkewStep
		w.st.skew += j
		w.tracef("server clock steps %v", j)
	}
	w.injectZoneLoss(dt)
	if w.perStep(o.FoldStallRate, dt) {
		if p := w.pick(w.alive()); p != nil && p.lagTill <= w.T {
			d := w.dur(time.Second, 5*time.Second)
			p.lag, p.lagTill = d, w.T+d
			p.healthy = false
			w.tracef("fold stall %s for %v", p.name(), d)
		}
	}
}

// beginClose starts p's close for a restart: its application gets every
// partition revoked; the close is appended once every Revoked call returned.
// The caller flushes p.
func (w *world) beginClose(p *proc) {
	p.closing, p.closeAt = true, w.T
	p.calls = append(p.calls, p.d.Close().Calls...)
	w.stats.Closes++
}

// beginLeave starts p's graceful leave: its application gets every
// partition revoked, each released once its Revoked call returned. The
// caller flushes p.
func (w *world) beginLeave(p *proc) {
	p.leaving = true
	p.calls = append(p.calls, p.d.Leave().Calls...)
	w.stats.Leaves++
}

// start starts a new process claiming id.
func (w *world) start(id string) {
	n := len(w.procs)
	p := &proc{
		n:        n,
		id:       id,
		nonce:    fmt.Sprintf("n%d-%d", n, w.opt.Seed),
		st:       decider.New(),
		lag:      w.dur(0, 150*time.Millisecond),
		off:      w.dur(0, 1000*time.Second),
		rate:     1 + (w.rng.Float64()*2-1)*w.opt.RateSpread,
		acting:   make([]act, len(w.universe)),
		healthy:  true,
		started:  w.T,
		nextInfo: w.T + w.dur(0, time.Second),
		stDirty:  true,
		h:        w.handlers[id],
	}
	if w.snap != nil && w.chance(0.5) {
		st, err := decider.Restore(w.snap, w.snapHash)
		if err != nil {
			w.fail(KindRefold, "restore of the snapshot: %v", err)
			return
		}
		p.st = st
		p.cursor, _ = slices.BinarySearch(w.st.logSeqs, st.LastSeq+1)
	}
	cfg := rawmember.Config{
		ID:         id,
		Nonce:      p.nonce,
		Timings:    w.opt.Timings,
		Window:     w.opt.Window,
		Grace:      w.opt.Grace,
		Declare:    true,
		Partitions: slices.Clone(w.partitions),
	}
	if w.opt.Broken.JudgeIgnoresOwnGaps {
		cfg.NewJudge = newOwnGapsJudge
	}
	w.placeConfig(&cfg) // placement mode (placement.go)
	p.d = rawmember.NewDriver(cfg)
	p.m = p.d.Member()
	w.procs = append(w.procs, p)
	w.byNonce[p.nonce] = p
	w.tracef("start %s (nonce %s, rate %.4f, from seq %d)", p.name(), p.nonce, p.rate, p.st.LastSeq)
	w.flush(p)
}

func (w *world) crash(p *proc, why string) {
	if !w.end(p, why) {
		return
	}
	p.healthy = false
	w.stats.Crashes++
	w.tracef("%s %s", why, p.name())
}

// exit ends a process that stopped (left, closed, or expired and rejoining).
func (w *world) exit(p *proc, why string) {
	if w.end(p, why) {
		w.tracef("exit %s: %s", p.name(), why)
	}
}

// end ends process p (crashed or exited); it reports false if p had
// already ended.
func (w *world) end(p *proc, why string) bool {
	if p.dead {
		return false
	}
	p.dead = true
	p.diedAt = w.T
	p.endWhy = why
	p.heldHB = nil
	p.belief = nil
	clear(p.acting)
	w.dropHanded(p)
	p.inbox = nil
	return true
}
