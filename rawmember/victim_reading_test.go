package rawmember

import (
	"testing"
	"time"
)

// The judge counts its victim's silence from the reading its driver reports
// each heartbeat at (the now of VictimMessage/VictimRecord), DESIGN rule 2:
// its own reading when it saw it. A victim heartbeating every 500 ms, each
// reported at the judge's reading, is never expired; the same heartbeats
// reported at a reading that falls behind (as a driver dating them by a
// clock slower than the judge's would report them; the simulator's broken
// judges do) are expired although they keep coming. The simulator relies on
// this: it breaks the judge through that reading alone.
func TestJudgeDatesVictimHeartbeatsByTheReportedReading(t *testing.T) {
	for _, lag := range []bool{false, true} {
		r := newRig(t)
		ms := r.group(4, "a", "b")
		b := ms["b"] // b judges a
		start := r.now
		got := false
		for i := 0; i < 200 && !got; i++ { // 20 s in steps of 100 ms
			got = verdictOf(r.step(b, 100*time.Millisecond))
			if i%5 != 0 {
				continue
			}
			at := r.now
			if lag {
				at = start + (r.now-start)*8/10
			}
			r.seq++
			b.VictimMessage("a", 1, r.seq, nil, at)
		}
		if got != lag {
			t.Errorf("heartbeats reported at a lagging reading %v: verdict %v, want %v", lag, got, lag)
		}
	}
}
