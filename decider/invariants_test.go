package decider

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// settledState returns a checked state: three members a, b, c (in join
// order) sharing six partitions, nothing in flight.
func settledState(t *testing.T) *State {
	t.Helper()
	f := newFolder(t)
	f.join("a")
	f.join("b")
	f.join("c")
	f.declare(6)
	f.closeWindow()
	f.settle()
	if err := CheckInvariants(f.s); err != nil {
		t.Fatal(err)
	}
	return f.s
}

// TestInvariantPieces breaks a settled state one invariant at a time and
// checks that the piece responsible (CheckPartition, CheckMember or
// CheckMembers) reports it with the same message as CheckInvariants: the
// audit runs the pieces, the tests the whole, and they must agree.
func TestInvariantPieces(t *testing.T) {
	ownedBy := func(s *State, id string) int {
		for i, o := range s.Owners {
			if o.Owner == id {
				return i
			}
		}
		t.Fatalf("%s owns nothing", id)
		return -1
	}
	type piece int
	const (
		partition piece = iota
		member
		members
		whole // only CheckInvariants sees it
	)
	cases := []struct {
		name  string
		piece piece
		want  string
		// breakIt corrupts s and returns the partition or member it is about.
		breakIt func(s *State) (p int, id string)
	}{
		{"unowned carries a token", partition, "unowned partition 2 carries", func(s *State) (int, string) {
			s.Owners[2] = Ownership{Token: 5}
			return 2, ""
		}},
		{"owner not a member", partition, "is owned by zz/1, not a member", func(s *State) (int, string) {
			p := ownedBy(s, "a")
			s.Owners[p].Owner = "zz"
			s.Owners[p].Inc = 1
			return p, ""
		}},
		{"token zero", partition, "has token 0 outside", func(s *State) (int, string) {
			p := ownedBy(s, "b")
			s.Owners[p].Token = 0
			return p, ""
		}},
		{"token after the log", partition, "outside (0, ", func(s *State) (int, string) {
			p := ownedBy(s, "b")
			s.Owners[p].Token = s.LastSeq + 1
			return p, ""
		}},
		{"target not a member", partition, "moves to yy/3, not a member", func(s *State) (int, string) {
			p := ownedBy(s, "a")
			s.Owners[p].Target, s.Owners[p].TargetInc = "yy", 3
			return p, ""
		}},
		{"target not live", partition, "moves to c, which is not live", func(s *State) (int, string) {
			p := ownedBy(s, "a")
			c := s.Members["c"]
			c.Closing = true
			s.Owners[p].Target, s.Owners[p].TargetInc = "c", c.Incarnation
			return p, ""
		}},
		{"target is the owner", partition, "moves to its own owner", func(s *State) (int, string) {
			p := ownedBy(s, "a")
			s.Owners[p].Target, s.Owners[p].TargetInc = "a", s.Owners[p].Inc
			return p, ""
		}},
		{"wrong ID", member, "member under b has ID x", func(s *State) (int, string) {
			s.Members["b"].ID = "x"
			return 0, "b"
		}},
		{"stale incarnation", member, "b has incarnation", func(s *State) (int, string) {
			s.LastInc["b"]++
			return 0, "b"
		}},
		{"leaving and closing", member, "b is both leaving and closing", func(s *State) (int, string) {
			s.Members["b"].Leaving, s.Members["b"].Closing = true, true
			return 0, "b"
		}},
		{"joined after the log", member, "c joined at", func(s *State) (int, string) {
			s.Members["c"].JoinSeq = s.LastSeq + 1
			return 0, "c"
		}},
		{"leaving with nothing", member, "c is leaving but owns nothing", func(s *State) (int, string) {
			c := s.Members["c"]
			for i := range s.Owners {
				if s.Owners[i].Owner == "c" {
					s.Owners[i] = Ownership{}
				}
			}
			s.reindex()
			c.Leaving = true
			return 0, "c"
		}},
		{"order too short", members, "order has 2 IDs for 3 members", func(s *State) (int, string) {
			s.Order = s.Order[:2]
			return 0, ""
		}},
		{"order names a stranger", members, "order[1]=q is not a member", func(s *State) (int, string) {
			s.Order[1] = "q"
			return 0, ""
		}},
		{"order out of join order", members, "order is not join order at b", func(s *State) (int, string) {
			s.Members["b"].JoinSeq = s.Members["a"].JoinSeq
			return 0, ""
		}},
		{"claim waits for a free ID", members, "claim n9 for free waits although the ID is free", func(s *State) (int, string) {
			s.Pending = append(s.Pending, PendingClaim{ID: "free", Nonce: "n9"})
			return 0, ""
		}},
		{"count off", whole, "a counts", func(s *State) (int, string) {
			s.Members["a"].owns++
			return 0, ""
		}},
		{"retired declared", whole, "retired partition p-0001 is declared", func(s *State) (int, string) {
			s.Retired = map[string]Ownership{"p-0001": s.Owners[1]}
			return 0, ""
		}},
		{"not indexed", whole, "partition 3 (p-0003) is not indexed", func(s *State) (int, string) {
			ids := slices.Clone(s.Partitions)
			ids[3] = "zz"
			s.index, _ = newPartIndex(ids)
			return 0, ""
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := settledState(t)
			p, id := tc.breakIt(s)
			all := CheckInvariants(s)
			if all == nil || !strings.Contains(all.Error(), tc.want) {
				t.Fatalf("CheckInvariants = %v, want a line containing %q", all, tc.want)
			}
			var got []error
			switch tc.piece {
			case partition:
				got = CheckPartition(s, p)
			case member:
				got = CheckMember(s, id)
			case members:
				got = CheckMembers(s)
			case whole:
				return
			}
			if len(got) == 0 {
				t.Fatalf("the piece found nothing; CheckInvariants says %v", all)
			}
			for _, e := range got {
				if !strings.Contains("\n"+all.Error()+"\n", "\n"+e.Error()+"\n") {
					t.Errorf("the piece says %q, which CheckInvariants does not (%v)", e, all)
				}
			}
			if !strings.Contains(errors.Join(got...).Error(), tc.want) {
				t.Errorf("the piece says %v, want a line containing %q", got, tc.want)
			}
		})
	}
}

// TestInvariantPiecesQuietOnGoodState: no piece reports anything on a
// settled state, and out-of-range arguments are not violations.
func TestInvariantPiecesQuietOnGoodState(t *testing.T) {
	s := settledState(t)
	for p := -1; p <= len(s.Owners); p++ {
		if errs := CheckPartition(s, p); errs != nil {
			t.Errorf("CheckPartition(%d) = %v", p, errs)
		}
	}
	for _, id := range append([]string{"nobody"}, s.Order...) {
		if errs := CheckMember(s, id); errs != nil {
			t.Errorf("CheckMember(%s) = %v", id, errs)
		}
	}
	if errs := CheckMembers(s); errs != nil {
		t.Errorf("CheckMembers = %v", errs)
	}
}

// TestCheckInvariantsOrderIsStable: several members and retired
// partitions broken at once are reported in the same order every time (map
// order never reaches the output).
func TestCheckInvariantsOrderIsStable(t *testing.T) {
	s := settledState(t)
	for _, id := range s.Order {
		s.Members[id].owns += 7
	}
	s.Retired = map[string]Ownership{}
	for _, id := range []string{"r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"} {
		s.Retired[id] = Ownership{}
	}
	first := CheckInvariants(s).Error()
	for range 50 {
		if got := CheckInvariants(s).Error(); got != first {
			t.Fatalf("the report changed between runs:\n%s\n---\n%s", first, got)
		}
	}
}
