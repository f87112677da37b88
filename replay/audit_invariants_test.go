package replay

import (
	"testing"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// TestAuditInvariantsAreTheDeciders: the audit's per-record checks are
// decider.CheckPartition and decider.CheckMembers, reported as invariant
// violations once per distinct message (numbers aside), repeats counted.
func TestAuditInvariantsAreTheDeciders(t *testing.T) {
	src := memSource(t, scenario(t))
	a := newAuditor(src, AuditOptions{MaxUnowned: 30 * time.Second})
	if err := src.Scan(t.Context(), ScanOptions{SkipHeaders: true}, a.record); err != nil {
		t.Fatal(err)
	}
	for _, v := range a.rep.Violations {
		if v.Kind == ViolationInvariant {
			t.Fatalf("the scenario breaks an invariant: %+v", v)
		}
	}
	before := len(a.rep.Violations)

	// Break one partition and one member of the folded state, as a fold
	// bug would, and run the audit's checks of one record.
	s := a.f.s
	p := -1
	for i, o := range s.Owners {
		if o.Owner != "" && o.Target == "" {
			p = i
			break
		}
	}
	if p < 0 || len(s.Order) == 0 {
		t.Fatal("the scenario ends with no owned partition or no member")
	}
	s.Owners[p].Target, s.Owners[p].TargetInc = s.Owners[p].Owner, s.Owners[p].Inc // a move to its own owner
	id := s.Order[0]
	s.LastInc[id]++
	r := &events.Record{Seq: s.LastSeq + 1}
	a.checkOwnership(uint32(p), r)
	a.checkMembers(r)
	s.LastInc[id]++ // another number, the same message once normalised
	a.checkMembers(&events.Record{Seq: s.LastSeq + 2})

	want := append(decider.CheckPartition(s, p), decider.CheckMember(s, id)...)
	got := a.rep.Violations[before:]
	if len(got) != 2 || len(want) != 2 {
		t.Fatalf("audit reported %+v; the decider says %v", got, want)
	}
	if got[0].Kind != ViolationInvariant || got[0].Message != want[0].Error() || got[0].Seq != r.Seq {
		t.Errorf("partition: audit %+v, decider %q", got[0], want[0])
	}
	// The member's message was reported with the first bump's numbers and
	// repeated once.
	if got[1].Kind != ViolationInvariant || normalize(got[1].Message) != normalize(want[1].Error()) || got[1].Repeats != 1 {
		t.Errorf("member: audit %+v, decider %q", got[1], want[1])
	}
}
