package rawmember

import (
	"testing"
	"time"
)

// A member learned of a log sequence its fold has not applied, then the log
// went backwards and lost it: the member stops heartbeating once the
// sequence is known for longer than the expiry, and LogRewound (the
// projection refolded) lets it heartbeat again at once instead of waiting
// for the log to grow past the lost sequence.
func TestLogRewoundForgetsLostSequences(t *testing.T) {
	r := newRig(t)
	a := r.group(4, "a")["a"]
	// run steps a for d in steps of 100 ms, acknowledging its heartbeats,
	// and returns how many it sent.
	run := func(d time.Duration) int {
		n := 0
		for range int(d / (100 * time.Millisecond)) {
			r.now += 100 * time.Millisecond
			a.Step(r.s, r.now)
			for _, act := range a.Actions() {
				if act.Kind == ActHeartbeat {
					n++
					r.seq++
					a.HeartbeatAcked(act.ID, r.seq, r.now)
				}
			}
		}
		return n
	}
	if run(time.Second) == 0 {
		t.Fatal("no heartbeat from a settled member")
	}
	a.Learned(r.seq+1000, r.now) // a record the log will lose
	run(a.cfg.Timings.Expiry + 200*time.Millisecond)
	if n := run(2 * time.Second); n != 0 {
		t.Fatalf("%d heartbeats while the fold is behind a known sequence for longer than the expiry", n)
	}
	if _, _, behind := a.Behind(); !behind {
		t.Fatal("Behind() = false while a learned sequence is not applied")
	}
	a.LogRewound()
	if _, _, behind := a.Behind(); behind {
		t.Fatal("Behind() = true after LogRewound")
	}
	if run(time.Second) == 0 {
		t.Fatal("no heartbeat after LogRewound")
	}
}
