package sim

import (
	"testing"
	"time"

	"github.com/parti-io/parti/liveness"
	"github.com/parti-io/parti/rawmember"
)

// The broken judge agrees with the production one on a steady and on a
// silent victim, and differs exactly where it is meant to: through the
// judge's own outage longer than the expiry it finds a heartbeating victim
// due when the stream comes back; the production judge restarts its count.
// Its fence is the production judge's.
func TestOwnGapsJudgeIgnoresOnlyTheJudgesGaps(t *testing.T) {
	const s = time.Second
	cfg := liveness.Production().JudgeConfig() // expiry 6 s, MaxGap 3 s
	good, _ := liveness.NewJudge(cfg)
	bj, err := newOwnGapsJudge(cfg)
	if err != nil {
		t.Fatal(err)
	}
	broken := bj.(*ownGapsJudge)
	check := func(now time.Duration, wantGood, wantBroken bool) {
		t.Helper()
		g, _, gf := good.Due(now)
		b, _, bf := broken.Due(now)
		if g != wantGood || b != wantBroken || gf != bf {
			t.Fatalf("at %v: due %v (fence %d) and broken %v (fence %d), want %v and %v", now, g, gf, b, bf, wantGood, wantBroken)
		}
	}
	both := func(f func(j rawmember.Judge)) {
		f(good)
		f(broken)
	}
	both(func(j rawmember.Judge) { j.Watch("v", 1, 0) })
	seq := uint64(0)
	for at := time.Duration(0); at < 10*s; at += 2 * s { // steady
		both(func(j rawmember.Judge) {
			j.OwnAck(at, at+10*time.Millisecond)
			j.ObserveVictim(seq+1, at+100*time.Millisecond)
		})
		seq++
		check(at+s, false, false)
	}
	// Outage from 10 s to 20 s: the judge's heartbeats fail, the victim is
	// not seen.
	for at := 10 * s; at < 20*s; at += 2 * s {
		both(func(j rawmember.Judge) {
			j.OwnFailure(at + s)
		})
	}
	both(func(j rawmember.Judge) {
		j.OwnAck(20*s, 20*s+10*time.Millisecond)
	})
	check(20*s+20*time.Millisecond, false, true) // healthy victim, 11.9 s since its last sighting
	// The victim heartbeats again: neither is due; then it falls silent.
	both(func(j rawmember.Judge) {
		j.ObserveVictim(seq+1, 20*s+100*time.Millisecond)
		for at := 22 * s; at < 26*s; at += 2 * s {
			j.OwnAck(at, at+10*time.Millisecond)
		}
	})
	check(26*s, false, false)
	check(26*s+100*time.Millisecond+1, true, true)
	if at, ok := broken.DueAt(); !ok || at != 26*s+100*time.Millisecond+1 {
		t.Fatalf("broken DueAt = %v %v", at, ok)
	}
	broken.Unwatch()
	if d, _, _ := broken.Due(30 * s); d {
		t.Fatal("due without a victim")
	}
}
