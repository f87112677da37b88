package rawmember

import (
	"testing"
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
)

// removalOf returns the removal among acts, if any.
func removalOf(acts []Action) *events.MemberRemoved {
	for _, a := range acts {
		if a.Kind != ActAppend {
			continue
		}
		for _, ev := range a.Events {
			if rm, ok := ev.(*events.MemberRemoved); ok {
				return rm
			}
		}
	}
	return nil
}

// Issue 12, item 3: an operator's force-expire goes the verdict's way. The
// judge appends a forced verdict at once, fenced like any verdict; the
// removal — which lets the leader hand the victim's partitions to others —
// follows only once the expiry has passed on the judge's clock since the
// verdict landed, so the victim's lease (shorter than the expiry, renewed
// only by heartbeats acked before the verdict) has run out. The victim stops
// acting as soon as its fold shows the force-expire.
func TestForceExpireRemovesOnlyAfterTheExpiry(t *testing.T) {
	r := newRig(t)
	ms := r.group(4, "a", "b")
	a, b := ms["a"], ms["b"] // b judges a
	b.VictimMessage("a", 1, 5, nil, r.now)
	r.mustApply(&events.OperatorAction{Action: events.OpForceExpire, Member: "a", Incarnation: 1, By: "ops"})
	opSeq := r.seq

	r.step(a, time.Millisecond)
	if a.Stopped() != StopExpired {
		t.Fatalf("forced a: stopped %v, want %v", a.Stopped(), StopExpired)
	}

	var verdict *Action
	for _, act := range r.step(b, time.Millisecond) {
		if act.Kind == ActVerdict {
			verdict = &act
		}
	}
	if verdict == nil || verdict.Member != "a" || verdict.Inc != 1 || verdict.Fence != 5 || verdict.Verdict.Forced != opSeq {
		t.Fatalf("forced verdict %+v, want one at once against a/1 fenced on 5 carrying %d", verdict, opSeq)
	}
	r.seq++
	b.VerdictDone(verdict.ID, r.seq, nil)
	verdictSeq := r.seq
	expiry := liveness.Test().Expiry
	for waited := time.Duration(0); waited < expiry; waited += 100 * time.Millisecond {
		if rm := removalOf(r.step(b, 100*time.Millisecond)); rm != nil {
			t.Fatalf("removal %+v after %v, before the expiry %v had passed since the verdict", rm, waited, expiry)
		}
	}
	var rm *events.MemberRemoved
	for i := 0; i < 5 && rm == nil; i++ {
		rm = removalOf(r.step(b, 100*time.Millisecond))
	}
	if rm == nil || rm.Member != "a" || rm.Incarnation != 1 || rm.Reason != events.ReasonForced || rm.VerdictSeq != verdictSeq {
		t.Fatalf("removal %+v, want a/1 forced citing verdict %d", rm, verdictSeq)
	}
}

// A judge that sees a forced verdict someone else appended (a judge before it
// in the ring, then replaced) waits the expiry from then too, and then the
// follow delay for that judge's removal.
func TestForcedVerdictSeenOnTheWatchWaits(t *testing.T) {
	r := newRig(t)
	ms := r.group(4, "a", "b")
	b := ms["b"]
	b.VictimMessage("a", 1, 5, nil, r.now)
	v := &events.ExpiryVerdict{Member: "a", Incarnation: 1, Judge: "x", JudgeInc: 1, LastSeen: 5, Forced: 3}
	if junk := b.VictimRecord("a", 1, liveness.LastMessage{Seq: 6, IsVerdict: true, VerdictMember: "a", VerdictIncarnation: 1, VerdictForced: 3}, v, r.now); junk {
		t.Fatal("a forced verdict naming the victim counted as junk")
	}
	expiry := liveness.Test().Expiry
	for waited := time.Duration(0); waited < expiry; waited += 100 * time.Millisecond {
		if rm := removalOf(r.step(b, 100*time.Millisecond)); rm != nil {
			t.Fatalf("removal %+v after %v", rm, waited)
		}
	}
	// Then it leaves the removal to the verdict's judge for followDelay,
	// and appends it itself when the fold still shows the victim.
	var rm *events.MemberRemoved
	for i := 0; i < 5+int(followDelay(liveness.Test())/(100*time.Millisecond)) && rm == nil; i++ {
		rm = removalOf(r.step(b, 100*time.Millisecond))
	}
	if rm == nil || rm.Reason != events.ReasonForced || rm.VerdictSeq != 6 || rm.Judge != "x" {
		t.Fatalf("removal %+v, want a/1 forced citing 6 by x", rm)
	}
}

// A verdict refused because the victim heartbeated meanwhile re-reads the
// subject; finding the victim's own fenced heartbeat there restarts the
// count. Fencing the next verdict on it without a restart would land a
// verdict on a live victim whose lease still runs (the cluster chaos test
// found it after a stream-leader election).
func TestRefusedVerdictSeeingTheVictimsHeartbeatRestartsTheCount(t *testing.T) {
	r := newRig(t)
	ms := r.group(4, "a", "b")
	b := ms["b"]
	nonce := r.s.Members["a"].Nonce
	b.VictimMessage("a", 1, 5, nil, r.now)
	expiry := liveness.Test().Expiry
	var verdicts int
	read := false
	for waited := time.Duration(0); waited < 3*expiry; waited += 100 * time.Millisecond {
		for _, act := range r.step(b, 100*time.Millisecond) {
			switch act.Kind {
			case ActVerdict:
				verdicts++
				if read {
					t.Fatalf("a verdict %v after the victim's heartbeat was read, before a new expiry", act.Fence)
				}
				b.VerdictDone(act.ID, 0, ErrConflict)
			case ActReadLast:
				if act.Member == "a" && !read {
					read = true
					b.HeartbeatResolved(liveness.LastMessage{Seq: 40, Nonce: nonce, Fenced: true}, true)
				}
			}
		}
		if read && waited < 2*expiry {
			continue
		}
		if read {
			break
		}
	}
	if verdicts != 1 || !read {
		t.Fatalf("%d verdicts, read %v; want the first refused, then none within the expiry", verdicts, read)
	}
}
