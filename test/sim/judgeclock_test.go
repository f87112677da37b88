package sim

import (
	"testing"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/rawmember"
)

// judgeRig is one judging process whose driver watches a/1 (nonce "na").
func judgeRig(clock JudgeClock) (*world, *proc) {
	w := &world{opt: Options{Timings: Timings()}}
	w.opt.Broken.JudgeClock = clock
	p := &proc{
		m:  rawmember.New(rawmember.Config{ID: "b", Nonce: "nb", Timings: w.opt.Timings}),
		st: &decider.State{Members: map[string]*decider.Member{"a": {ID: "a", Incarnation: 1, Nonce: "na"}}},
	}
	p.watched("a", 1)
	return w, p
}

// hb is a/1's heartbeat stored at server time ts, sent at its reading sent.
func hb(seq uint64, ts, sent time.Duration) *hbMessage {
	return &hbMessage{seq: seq, ts: ts, sent: sent, hb: &events.Heartbeat{Nonce: "na"}}
}

// date reports m to p's driver at reading now and returns the reading the
// driver passes on.
func date(w *world, p *proc, m *hbMessage, now time.Duration) time.Duration {
	return w.victimNow(p, "a", 1, m, m.describe(), now)
}

// The broken judges' dating: the correct judge's driver passes its own
// reading; a broken one maps the foreign clock onto its own at the first
// heartbeat counted, so it agrees while the foreign clock keeps in step and
// goes wrong when the server's clock steps back or the victim's runs slow.
func TestJudgeClockDating(t *testing.T) {
	const s = time.Second
	for _, tc := range []struct {
		clock JudgeClock
		ts    time.Duration // server time of the second heartbeat (first: 100 s)
		sent  time.Duration // victim's reading at the second (first: 1 h)
		want  time.Duration // reading passed on for the second, seen at 12 s (first at 10 s)
	}{
		{JudgeOwnClock, 98 * s, time.Hour + s, 12 * s},
		{JudgeServerClock, 102 * s, time.Hour + 2*s, 12 * s}, // in step
		{JudgeServerClock, 98 * s, time.Hour + 2*s, 8 * s},   // the server's clock stepped back 4 s
		{JudgeVictimClock, 102 * s, time.Hour + 2*s, 12 * s}, // in step
		{JudgeVictimClock, 102 * s, time.Hour + s, 11 * s},   // the victim's clock runs at half rate
	} {
		w, p := judgeRig(tc.clock)
		if got := date(w, p, hb(5, 100*s, time.Hour), 10*s); got != 10*s {
			t.Errorf("%v: the first heartbeat passed on at %v, want 10s", tc.clock, got)
		}
		if got := date(w, p, hb(6, tc.ts, tc.sent), 12*s); got != tc.want {
			t.Errorf("%v: the second heartbeat (server %v, sent %v) passed on at %v, want %v", tc.clock, tc.ts, tc.sent, got, tc.want)
		}
	}
}

// Only a heartbeat the judge counts measures the mapping (as when the broken
// clock was a rule of rawmember's judge): junk, a raw copy, another process's
// heartbeat, a verdict and another incarnation's heartbeat are passed on at
// the driver's own reading and leave the mapping unset; a new watch measures
// it afresh.
func TestJudgeClockDatingMeasuresOnCountedHeartbeats(t *testing.T) {
	const s = time.Second
	w, p := judgeRig(JudgeServerClock)
	other := hb(1, 50*s, 0)
	other.hb = &events.Heartbeat{Nonce: "nx"}
	raw := hb(2, 50*s, 0)
	raw.raw = true
	junk := &hbMessage{seq: 3, ts: 50 * s, junk: true}
	verdict := &hbMessage{seq: 4, ts: 50 * s, verdict: &events.ExpiryVerdict{Member: "a", Incarnation: 1}}
	for _, m := range []*hbMessage{other, raw, junk, verdict} {
		if got := date(w, p, m, 7*s); got != 7*s {
			t.Errorf("message %d passed on at %v, want the own reading 7s", m.seq, got)
		}
	}
	if got := w.victimNow(p, "a", 2, hb(5, 50*s, 0), hb(5, 50*s, 0).describe(), 7*s); got != 7*s {
		t.Errorf("another incarnation's heartbeat passed on at %v, want 7s", got)
	}
	if p.dating.set {
		t.Fatal("a message the judge does not count measured the mapping")
	}
	date(w, p, hb(6, 100*s, 0), 10*s)
	if got := date(w, p, hb(7, 103*s, 0), 11*s); got != 13*s {
		t.Errorf("after the mapping at the first heartbeat counted: %v, want 13s", got)
	}
	p.watched("a", 1) // a watch begun again (rawmember emits no ActUnwatch between)
	if got := date(w, p, hb(8, 200*s, 0), 20*s); got != 20*s {
		t.Errorf("a new watch kept the old mapping: %v, want 20s", got)
	}
}
