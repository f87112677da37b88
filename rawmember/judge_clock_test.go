package rawmember

import (
	"testing"
	"time"
)

// The judges broken on purpose (Broken.JudgeClock) agree with the correct
// judge while the foreign clock they date heartbeats by keeps in step with
// theirs, and expire a member that heartbeats all along once it does not: the
// server's clock steps back, or the victim's clock runs slow.
func TestJudgeClockBrokenOnPurpose(t *testing.T) {
	epoch := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		clock      JudgeClock
		serverStep bool // the server's clock steps back 4 s after 5 s
		victimSlow bool // the victim's clock runs at 0.8
		verdict    bool
	}{
		{JudgeOwnClock, true, false, false},
		{JudgeOwnClock, false, true, false},
		{JudgeServerClock, false, false, false},
		{JudgeServerClock, false, true, false},
		{JudgeServerClock, true, false, true},
		{JudgeVictimClock, false, false, false},
		{JudgeVictimClock, true, false, false},
		{JudgeVictimClock, false, true, true},
	} {
		r := newRig(t)
		ms := r.group(4, "a", "b")
		b := ms["b"] // b judges a
		b.cfg.Broken.JudgeClock = tc.clock
		start := r.now
		got := false
		for i := 0; i < 200 && !got; i++ { // 20 s in steps of 100 ms
			for _, act := range r.step(b, 100*time.Millisecond) {
				got = got || act.Kind == ActVerdict
			}
			if i%5 != 0 {
				continue
			}
			// a heartbeats every 500 ms; b sees each at once.
			el := r.now - start
			server := epoch.Add(el)
			if tc.serverStep && el > 5*time.Second {
				server = server.Add(-4 * time.Second)
			}
			sent := time.Hour + el
			if tc.victimSlow {
				sent = time.Hour + el*8/10
			}
			r.seq++
			b.VictimMessageStamped("a", 1, r.seq, nil, r.now, Stamps{Server: server, Sent: sent, HasSent: true})
		}
		if got != tc.verdict {
			t.Errorf("judge on the %v, server clock steps back %v, victim clock slow %v: verdict %v, want %v",
				tc.clock, tc.serverStep, tc.victimSlow, got, tc.verdict)
		}
	}
}
