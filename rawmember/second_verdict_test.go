package rawmember

import (
	"testing"
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
)

func verdictOf(acts []Action) bool {
	for _, a := range acts {
		if a.Kind == ActVerdict {
			return true
		}
	}
	return false
}

// Issue 12 ("also found"): a judge that saw another judge's verdict against
// its victim (a restart's waiting claim and the ring judge judge the same
// incarnation) appended a verdict of its own once its count ran out, fenced
// on the first verdict's sequence, so the server accepted it; each verdict
// was then followed by its own removal. It appends no verdict, and leaves
// the removal to the verdict's judge: it appends it only if the fold still
// shows the victim followDelay later.
func TestSeenVerdictIsNotJudgedAgain(t *testing.T) {
	for _, folded := range []bool{true, false} {
		r := newRig(t)
		ms := r.group(4, "a", "b")
		b := ms["b"]
		b.VictimMessage("a", 1, 5, nil, r.now)
		v := &events.ExpiryVerdict{Member: "a", Incarnation: 1, Judge: "a", JudgeInc: 0, LastSeen: 5}
		if junk := b.VictimRecord("a", 1, liveness.LastMessage{Seq: 6, IsVerdict: true, VerdictMember: "a", VerdictIncarnation: 1}, v, r.now); junk {
			t.Fatal("a verdict naming the victim counted as junk")
		}
		delay := followDelay(liveness.Test())
		for waited := time.Duration(0); waited < delay; waited += 100 * time.Millisecond {
			acts := r.step(b, 100*time.Millisecond)
			if verdictOf(acts) {
				t.Fatalf("a second verdict after %v", waited)
			}
			if rm := removalOf(acts); rm != nil {
				t.Fatalf("removal %+v after %v: the verdict's judge appends it", rm, waited)
			}
		}
		if folded {
			r.mustApply(&events.MemberRemoved{Member: "a", Incarnation: 1, Reason: events.ReasonExpired, VerdictSeq: 6, Judge: "a"})
		}
		var rm *events.MemberRemoved
		for i := 0; i < int(liveness.Test().Expiry/(100*time.Millisecond)); i++ {
			acts := r.step(b, 100*time.Millisecond)
			if verdictOf(acts) {
				t.Fatal("a second verdict")
			}
			if x := removalOf(acts); x != nil {
				if rm != nil {
					t.Fatal("two removals")
				}
				rm = x
			}
		}
		switch {
		case folded && rm != nil:
			t.Fatalf("removal %+v although the verdict's judge's removal was folded", rm)
		case !folded && (rm == nil || rm.VerdictSeq != 6 || rm.Judge != "a"):
			t.Fatalf("removal %+v; want the fallback removal citing verdict 6 by a", rm)
		}
	}
}
