package liveness

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

const (
	ms = time.Millisecond
	s  = time.Second
)

// prodJudge is the judge configuration of the production profile: expiry 6s,
// MaxGap 3s (heartbeat 2s + ack budget 1s).
var prodJudge = Production().JudgeConfig()

// jstep is one step of a judge script. Steps are applied in order of their
// reading (stable for equal readings).
type jstep struct {
	at   time.Duration
	do   func(j *Judge)
	desc string

	check bool
	want  bool          // Due
	span  time.Duration // checked if >= 0
	fence uint64
}

func watch(at time.Duration) jstep {
	return jstep{at: at, desc: fmt.Sprintf("watch@%v", at), do: func(j *Judge) { j.Watch("worker-1", 1, at) }}
}

func seen(seq uint64, at time.Duration) jstep {
	return jstep{at: at, desc: fmt.Sprintf("seen(%d)@%v", seq, at), do: func(j *Judge) { j.ObserveVictim(seq, at) }}
}

func ack(sent, acked time.Duration) jstep {
	return jstep{at: acked, desc: fmt.Sprintf("ack(sent %v)@%v", sent, acked), do: func(j *Judge) { j.OwnAck(sent, acked) }}
}

func fail(at time.Duration) jstep {
	return jstep{at: at, desc: fmt.Sprintf("fail@%v", at), do: func(j *Judge) { j.OwnFailure(at) }}
}

func unwatch(at time.Duration) jstep {
	return jstep{at: at, desc: fmt.Sprintf("unwatch@%v", at), do: func(j *Judge) { j.Unwatch() }}
}

// due checks Due at a reading; span is not checked.
func due(at time.Duration, want bool, fence uint64) jstep {
	return jstep{at: at, check: true, want: want, span: -1, fence: fence}
}

// dueSpan checks Due and the span.
func dueSpan(at time.Duration, want bool, span time.Duration, fence uint64) jstep {
	st := due(at, want, fence)
	st.span = span
	return st
}

// acks returns the judge's own healthy heartbeats: sent every `every` from
// `from` (inclusive) to `to` (exclusive), each acked 10ms after it was sent.
func acks(from, to, every time.Duration) []jstep {
	var out []jstep
	for t := from; t < to; t += every {
		out = append(out, ack(t, t+10*ms))
	}
	return out
}

// seens returns victim heartbeats seen every `every` from `from` to `to`,
// with sequences starting at firstSeq.
func seens(firstSeq uint64, from, to, every time.Duration) []jstep {
	var out []jstep
	seq := firstSeq
	for t := from; t < to; t += every {
		out = append(out, seen(seq, t))
		seq++
	}
	return out
}

// dues returns checks every `every` in [from, to) all expecting the same.
func dues(from, to, every time.Duration, want bool) []jstep {
	var out []jstep
	for t := from; t < to; t += every {
		st := due(t, want, 0)
		st.fence = ^uint64(0) // do not check
		out = append(out, st)
	}
	return out
}

func script(parts ...any) []jstep {
	var out []jstep
	for _, p := range parts {
		switch p := p.(type) {
		case jstep:
			out = append(out, p)
		case []jstep:
			out = append(out, p...)
		default:
			panic(fmt.Sprintf("script: %T", p))
		}
	}
	slices.SortStableFunc(out, func(a, b jstep) int { return cmp.Compare(a.at, b.at) })
	return out
}

func runJudge(t *testing.T, steps []jstep) {
	t.Helper()
	j, err := NewJudge(prodJudge)
	if err != nil {
		t.Fatal(err)
	}
	var history []string
	for _, st := range steps {
		if !st.check {
			st.do(j)
			history = append(history, st.desc)
			continue
		}
		got, span, fence := j.Due(st.at)
		if got != st.want {
			t.Fatalf("Due(%v) = %v, want %v (span %v)\nafter: %v", st.at, got, st.want, span, tail(history, 8))
		}
		if st.span >= 0 && span != st.span {
			t.Fatalf("Due(%v) span = %v, want %v", st.at, span, st.span)
		}
		if st.fence != ^uint64(0) && fence != st.fence {
			t.Fatalf("Due(%v) fence = %d, want %d", st.at, fence, st.fence)
		}
	}
}

func tail(h []string, n int) []string {
	if len(h) > n {
		return h[len(h)-n:]
	}
	return h
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name  string
		steps []jstep
	}{
		{
			name: "steady victim is never due",
			steps: script(
				watch(0), acks(0, 120*s, 2*s), seens(1, 100*ms, 120*s, 2*s),
				dues(0, 120*s, 50*ms, false),
			),
		},
		{
			name: "steady victim with slow but healthy acks is never due",
			steps: script(
				watch(0),
				func() []jstep { // acks 2.99s apart: within MaxGap
					var out []jstep
					for t := time.Duration(0); t < 60*s; t += 2 * s {
						out = append(out, ack(t, t+990*ms))
					}
					return out
				}(),
				seens(1, 100*ms, 60*s, 2*s),
				dues(0, 60*s, 50*ms, false),
			),
		},
		{
			name: "silent victim is due just after the expiry, not before",
			steps: script(
				watch(0), acks(0, 30*s, 2*s), seen(5, 1*s),
				dueSpan(6*s, false, 5*s, 5),
				dueSpan(7*s-1, false, 6*s-1, 5),
				dueSpan(7*s, false, 6*s, 5), // exactly the expiry: not yet
				dueSpan(7*s+1, true, 6*s+1, 5),
				dueSpan(20*s, true, 19*s, 5),
			),
		},
		{
			name: "each victim heartbeat restarts the count and moves the fence",
			steps: script(
				watch(0), acks(0, 30*s, 2*s), seen(5, 1*s), seen(6, 5*s),
				due(7*s+1, false, 6),
				due(11*s, false, 6),
				due(11*s+1, true, 6),
			),
		},
		{
			name: "a redelivered or older sequence does not restart the count",
			steps: script(
				watch(0), acks(0, 30*s, 2*s), seen(5, 1*s), seen(5, 4*s), seen(4, 5*s),
				due(7*s+1, true, 5),
			),
		},
		{
			name: "judge outage longer than the expiry restarts the count",
			// The judge heartbeats fine until 2s; the stream is gone from 3s
			// to 13s (its heartbeats fail); the victim, cut off too, is not
			// seen. The first ack after the outage (sent 14s, acked 14.01s)
			// starts a new run; the victim's heartbeat arrives at 15s.
			steps: script(
				watch(0), acks(0, 3*s, 2*s), seen(1, 500*ms),
				fail(5*s), fail(7*s), fail(9*s), fail(11*s), fail(13*s),
				acks(14*s, 60*s, 2*s), seens(2, 15*s, 60*s, 2*s),
				due(4*s, false, 1),
				due(13*s+500*ms, false, 1), // outage: never due (a count from the sighting alone would be)
				dueSpan(14*s+500*ms, false, 490*ms, 1),
				due(14*s+900*ms, false, 1), // just after recovery
				dues(15*s, 60*s, 50*ms, false),
			),
		},
		{
			name: "after a judge outage a still-silent victim is due one expiry after recovery",
			steps: script(
				watch(0), acks(0, 3*s, 2*s), seen(1, 500*ms),
				fail(5*s), fail(7*s), fail(9*s),
				acks(10*s, 60*s, 2*s), // run restarts at 10.01s
				due(10*s+20*ms, false, 1),
				dueSpan(16*s+10*ms, false, 6*s, 1),
				dueSpan(16*s+11*ms, true, 6*s+1*ms, 1),
			),
		},
		{
			name: "a stalled ack (leader election) is a gap; the run restarts at the ack, not the send",
			// Healthy until the ack at 2.01s; the heartbeat sent at 4s stalls
			// through a 7s election and is acked at 11s. Counting from its
			// send (4s) would make the victim due at 11.5s; the rule counts
			// from 11s.
			steps: script(
				watch(0), ack(0, 10*ms), ack(2*s, 2*s+10*ms), seen(1, 1500*ms),
				ack(4*s, 11*s), acks(13*s, 40*s, 2*s),
				due(5*s, false, 1), // lastAck 2.01s is 2.99s old: healthy, span 3.5s
				due(6*s, false, 1), // lastAck 3.99s old: unhealthy
				due(8*s, false, 1), // election: 6.5s since the sighting, not due
				dueSpan(11*s+500*ms, false, 500*ms, 1),
				dueSpan(17*s, false, 6*s, 1),
				dueSpan(17*s+1, true, 6*s+1, 1),
			),
		},
		{
			name: "a victim seen after a stalled ack is not due",
			steps: script(
				watch(0), ack(0, 10*ms), ack(2*s, 2*s+10*ms), seen(1, 1500*ms),
				ack(4*s, 11*s), acks(13*s, 40*s, 2*s), seens(2, 12*s, 40*s, 2*s),
				dues(9*s, 12*s, 50*ms, false),
				dues(12*s, 40*s, 50*ms, false),
			),
		},
		{
			name: "no verdict while the judge's own heartbeats are not healthy now",
			// Acks stop at 10.01s without a recorded failure (a stuck loop);
			// from 13.01s the last ack is older than MaxGap.
			steps: script(
				watch(0), acks(0, 11*s, 2*s), seen(1, 500*ms),
				due(13*s+10*ms, true, 1),
				due(13*s+11*ms, false, 1),
				due(30*s, false, 1),
				acks(30*s, 60*s, 2*s), // spacing 20s > MaxGap: new run at 30.01s
				due(30*s+20*ms, false, 1),
				dueSpan(36*s+10*ms, false, 6*s, 1),
				dueSpan(36*s+11*ms, true, 6*s+1*ms, 1),
			),
		},
		{
			name: "a failure alone stops verdicts until the next ack",
			steps: script(
				watch(0), acks(0, 9*s, 2*s), seen(1, 500*ms),
				due(8*s+20*ms, true, 1),
				fail(9*s),
				due(9*s+1, false, 1),
				acks(10*s, 30*s, 2*s),
				due(10*s+20*ms, false, 1),
				dueSpan(16*s+10*ms, false, 6*s, 1),
				dueSpan(16*s+11*ms, true, 6*s+1*ms, 1),
			),
		},
		{
			name: "an ack older than a recorded failure is stale",
			steps: script(
				watch(0), acks(0, 9*s, 2*s), seen(1, 500*ms),
				fail(9*s),
				jstep{at: 9*s + 1, desc: "late ack", do: func(j *Judge) { j.OwnAck(8*s+500*ms, 8*s+900*ms) }},
				due(9*s+2, false, 1),
				acks(10*s, 30*s, 2*s), // the run starts at 10.01s, not 8.9s
				due(15*s, false, 1),   // 6.1s after the stale ack
				due(16*s+11*ms, true, 1),
			),
		},
		{
			name: "inherited victim counts from the judge's first ack sent after Watch",
			// The ack of the heartbeat sent at 4.9s arrives after Watch (5s)
			// but was sent before it: it does not count. The next (sent 6.9s,
			// acked 7s) starts the count, not Watch.
			steps: script(
				ack(900*ms, 1*s), ack(2900*ms, 3*s), ack(4900*ms, 5100*ms),
				ack(6900*ms, 7*s), acks(8900*ms, 40*s, 2*s),
				watch(5*s),
				dueSpan(6*s, false, 0, 0),
				dueSpan(11*s, false, 4*s, 0),
				dueSpan(11*s+200*ms, false, 4*s+200*ms, 0), // counting from 5.1s would be due
				dueSpan(13*s, false, 6*s, 0),
				dueSpan(13*s+1, true, 6*s+1, 0), // fence 0: lands only on an empty subject
			),
		},
		{
			name: "an inherited victim's heartbeat replaces the inherited start",
			steps: script(
				acks(0, 40*s, 2*s),
				watch(5*s), seen(3, 5200*ms),
				due(11*s+200*ms, false, 3),
				due(11*s+200*ms+1, true, 3),
			),
		},
		{
			name: "an inherited victim after an outage counts from the first ack after it",
			steps: script(
				acks(0, 5*s, 2*s), watch(5*s),
				fail(6*s), fail(8*s), fail(10*s),
				acks(12*s, 40*s, 2*s),
				due(11*s+1, false, 0),
				due(18*s+10*ms, false, 0),
				due(18*s+11*ms, true, 0),
			),
		},
		{
			name: "Watch replaces the victim and forgets what was seen",
			steps: script(
				watch(0), acks(0, 40*s, 2*s), seen(7, 1*s),
				watch(3*s),
				due(7*s+1, false, 0),
				due(9*s+1, false, 0), // 6s after Watch: the count starts at the first ack
				due(10*s+10*ms, false, 0),
				due(10*s+11*ms, true, 0), // first ack sent ≥ 3s was acked at 4.01s
			),
		},
		{
			name: "nothing is due without a victim",
			steps: script(
				acks(0, 40*s, 2*s),
				due(30*s, false, 0),
				watch(1*s), seen(2, 1*s), unwatch(2*s),
				due(20*s, false, 0),
			),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runJudge(t, tc.steps) })
	}
}

func TestJudgeVictimAndConfig(t *testing.T) {
	j, err := NewJudge(prodJudge)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := j.Victim(); ok {
		t.Fatal("new judge has a victim")
	}
	j.Watch("worker-3", 7, 0)
	if m, inc, ok := j.Victim(); !ok || m != "worker-3" || inc != 7 {
		t.Fatalf("Victim() = %q, %d, %v", m, inc, ok)
	}
	j.Unwatch()
	if _, _, ok := j.Victim(); ok {
		t.Fatal("victim after Unwatch")
	}
	if j.Config() != prodJudge {
		t.Fatalf("Config() = %+v", j.Config())
	}
}

func TestJudgeConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   JudgeConfig
		field string
	}{
		{"zero expiry", JudgeConfig{MaxGap: s}, "Expiry"},
		{"negative max gap", JudgeConfig{Expiry: s, MaxGap: -1}, "MaxGap"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewJudge(tc.cfg)
			if !errors.Is(err, ErrInvalidTimings) {
				t.Fatalf("NewJudge(%+v) = %v, want ErrInvalidTimings", tc.cfg, err)
			}
			var te *TimingsError
			if !errors.As(err, &te) || te.Field != tc.field {
				t.Fatalf("error %v does not name %s", err, tc.field)
			}
		})
	}
}

// TestJudgeRandomHistories checks the rule against properties read directly
// off random histories of outages, stalls and silent victims:
//
//   - safety: whenever a verdict is due, during the last Expiry the judge
//     recorded no failure, saw no new victim heartbeat, and its acks were at
//     most MaxGap apart (also across the window's start), the last within
//     MaxGap of now;
//   - liveness: if over the last Expiry + 2·MaxGap the judge had no failure,
//     acks at most MaxGap apart with one before now − Expiry, its last ack
//     within MaxGap, and the victim was last seen before now − Expiry, a
//     verdict is due.
//
// A count from the victim's last sighting alone, ignoring the judge's own
// gaps, must be unsafe somewhere: the histories exercise outages.
func TestJudgeRandomHistories(t *testing.T) {
	cfg := prodJudge
	const (
		hb     = 2 * s
		budget = 1 * s
	)
	naiveUnsafe, verdicts, restarts := 0, 0, 0
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0xdecaf))
		evs := randomHistory(rng, hb, budget, 600*s)

		good, _ := NewJudge(cfg)
		good.Watch("v", 1, 0)

		var h history
		for _, ev := range evs {
			switch ev.kind {
			case evAck:
				good.OwnAck(ev.sent, ev.at)
				h.acks = append(h.acks, ev.at)
			case evFail:
				good.OwnFailure(ev.at)
				h.fails = append(h.fails, ev.at)
			case evSeen:
				good.ObserveVictim(ev.seq, ev.at)
				h.seens = append(h.seens, ev.at)
			case evCheck:
				now := ev.at
				d, _, _ := good.Due(now)
				// The naive count: from the victim's last sighting
				// (or the watch at 0), the judge's own gaps ignored.
				last, _ := lastBefore(h.seens, now+1)
				naive := now-last > cfg.Expiry
				if naive && !d {
					restarts++
				}
				if d {
					verdicts++
					if why := h.unsafe(now, cfg); why != "" {
						t.Fatalf("seed %d: due at %v but %s", seed, now, why)
					}
				} else if h.shouldBeDue(now, cfg) {
					t.Fatalf("seed %d: not due at %v although the judge was healthy and the victim silent", seed, now)
				}
				if naive && h.unsafe(now, cfg) != "" {
					naiveUnsafe++
				}
			}
		}
	}
	t.Logf("checks with a verdict due: %d; where only the naive count was due: %d; naive count unsafe: %d",
		verdicts, restarts, naiveUnsafe)
	if verdicts == 0 || restarts == 0 {
		t.Fatal("the histories exercise neither silent victims nor outages")
	}
	if naiveUnsafe == 0 {
		t.Fatal("the naive count was never unsafe: the histories do not exercise outages")
	}
}

type evKind int

const (
	evAck evKind = iota
	evFail
	evSeen
	evCheck
)

type ev struct {
	kind evKind
	at   time.Duration
	sent time.Duration
	seq  uint64
}

// randomHistory simulates a judge and its victim over [0, end): the judge
// heartbeats sequentially every hb (failing after budget, or stalling until
// the end of an outage); outages of 1–15s hit both; the victim goes silent
// now and then; its heartbeats are seen only outside outages.
func randomHistory(rng *rand.Rand, hb, budget, end time.Duration) []ev {
	// Outages.
	type span struct{ from, to time.Duration }
	var outages []span
	for t := 5 * s; t < end; {
		t += time.Duration(rng.Int64N(int64(60 * s)))
		d := time.Duration(1+rng.Int64N(14)) * s
		outages = append(outages, span{t, t + d})
		t += d
	}
	outageAt := func(t time.Duration) (span, bool) {
		for _, o := range outages {
			if t >= o.from && t < o.to {
				return o, true
			}
		}
		return span{}, false
	}
	var evs []ev
	// The judge's heartbeats.
	for t := time.Duration(0); t < end; {
		if o, ok := outageAt(t); ok {
			if rng.IntN(2) == 0 {
				evs = append(evs, ev{kind: evFail, at: t + budget})
				t += max(hb, budget)
			} else { // stalls, acked after the outage
				acked := o.to + time.Duration(rng.Int64N(int64(50*ms)))
				evs = append(evs, ev{kind: evAck, sent: t, at: acked})
				t = max(acked, t+hb)
			}
			continue
		}
		lat := time.Duration(rng.Int64N(int64(budget)))
		if o, ok := outageAt(t + lat); ok { // outage began in flight
			acked := o.to + time.Duration(rng.Int64N(int64(50*ms)))
			evs = append(evs, ev{kind: evAck, sent: t, at: acked})
			t = max(acked, t+hb)
			continue
		}
		evs = append(evs, ev{kind: evAck, sent: t, at: t + lat})
		t = max(t+lat, t+hb)
	}
	// The victim's heartbeats.
	seq := uint64(1)
	var prevAt time.Duration
	for t := 100 * ms; t < end; {
		if rng.IntN(10) == 0 {
			t += time.Duration(rng.Int64N(int64(15 * s))) // silent
		}
		at := t + time.Duration(rng.Int64N(int64(100*ms)))
		if o, ok := outageAt(at); ok {
			at = o.to + time.Duration(rng.Int64N(int64(300*ms)))
		}
		at = max(at, prevAt) // seen in sequence order
		prevAt = at
		evs = append(evs, ev{kind: evSeen, at: at, seq: seq})
		seq++
		t += hb
	}
	for t := time.Duration(0); t < end; t += 37 * ms {
		evs = append(evs, ev{kind: evCheck, at: t})
	}
	slices.SortStableFunc(evs, func(a, b ev) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.kind, b.kind))
	})
	return evs
}

type history struct {
	acks, fails, seens []time.Duration // in order
}

func in(ts []time.Duration, from, to time.Duration) []time.Duration {
	i, _ := slices.BinarySearch(ts, from)
	j, _ := slices.BinarySearch(ts, to+1)
	return ts[i:j]
}

func lastBefore(ts []time.Duration, t time.Duration) (time.Duration, bool) {
	i, _ := slices.BinarySearch(ts, t)
	if i == 0 {
		return 0, false
	}
	return ts[i-1], true
}

// unsafe returns why a verdict at now would be unjustified, or "".
func (h *history) unsafe(now time.Duration, cfg JudgeConfig) string {
	from := now - cfg.Expiry
	if f := in(h.fails, from, now); len(f) > 0 {
		return fmt.Sprintf("the judge failed at %v", f[0])
	}
	if v := in(h.seens, from, now); len(v) > 0 {
		return fmt.Sprintf("the victim was seen at %v", v[0])
	}
	a := in(h.acks, from, now)
	if len(a) == 0 || now-a[len(a)-1] > cfg.MaxGap {
		return "the judge's last ack is older than MaxGap"
	}
	prev, ok := lastBefore(h.acks, from)
	if !ok || a[0]-prev > cfg.MaxGap {
		return fmt.Sprintf("the judge had a gap before its ack at %v", a[0])
	}
	for i := 1; i < len(a); i++ {
		if a[i]-a[i-1] > cfg.MaxGap {
			return fmt.Sprintf("the judge had a gap between acks at %v and %v", a[i-1], a[i])
		}
	}
	return ""
}

// shouldBeDue reports whether the rule must give a verdict at now.
func (h *history) shouldBeDue(now time.Duration, cfg JudgeConfig) bool {
	if len(h.seens) == 0 {
		return false
	}
	if h.seens[len(h.seens)-1] >= now-cfg.Expiry {
		return false
	}
	from := now - cfg.Expiry - 2*cfg.MaxGap
	if len(in(h.fails, from, now)) > 0 {
		return false
	}
	a := in(h.acks, from, now)
	if len(a) == 0 || now-a[len(a)-1] > cfg.MaxGap || a[0] >= now-cfg.Expiry {
		return false
	}
	for i := 1; i < len(a); i++ {
		if a[i]-a[i-1] > cfg.MaxGap {
			return false
		}
	}
	// The ack a[0] may itself start a run (gap before it); the run still
	// started before now − Expiry.
	return true
}

// Issue 12, item 1: junk on a dead victim's subject moves the verdict's fence
// but does not restart the count, so the verdict lands on the junk's
// sequence. The old judge fenced on the victim's last heartbeat and was
// refused for ever.
func TestJunkMovesTheFenceNotTheCount(t *testing.T) {
	j, err := NewJudge(JudgeConfig{Expiry: 6 * time.Second, MaxGap: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s := time.Second
	j.Watch("v", 1, 0)
	j.OwnAck(0, s/10)
	j.ObserveVictim(10, s)
	for at := 2 * s; at <= 8*s; at += 2 * s {
		j.OwnAck(at, at+s/10)
	}
	j.ObserveOther(11) // junk at 5 s
	due, _, fence := j.Due(8 * s)
	if !due || fence != 11 {
		t.Fatalf("after junk: due %v fence %d, want true 11 (count from the heartbeat at 1 s)", due, fence)
	}
	// A lower sequence does not lower the fence; a refused verdict's read
	// sets it, even lower (the subject's messages expired).
	j.ObserveOther(5)
	if _, _, fence := j.Due(8 * s); fence != 11 {
		t.Fatalf("fence %d after an older message, want 11", fence)
	}
	j.Refence(0)
	if _, _, fence := j.Due(8 * s); fence != 0 {
		t.Fatalf("fence %d after a read of an empty subject, want 0", fence)
	}
	// The victim's real heartbeat restarts the count.
	j.ObserveVictim(12, 8*s)
	if due, _, fence := j.Due(8*s + s/2); due || fence != 12 {
		t.Fatalf("after a heartbeat: due %v fence %d, want false 12", due, fence)
	}
}
