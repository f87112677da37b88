package decider

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/parti-io/parti/events"
)

// oldGeneration folds a small group through a cold start, a restart and a
// close of every member: the state a migration carries.
func oldGeneration(t *testing.T) *folder {
	f := newFolder(t)
	for _, id := range []string{"a", "b", "c"} {
		f.join(id)
	}
	f.declare(24)
	f.closeWindow()
	f.settle()
	for _, id := range []string{"a", "b", "c"} {
		m := f.s.Members[id]
		f.mustApply(&events.MemberClosing{Member: id, Incarnation: m.Incarnation})
	}
	return f
}

// genesisRecords encodes st as a genesis in parts of at most chunk bytes,
// starting at sequence first.
func genesisRecords(t *testing.T, st *State, first uint64, chunk int) []events.Record {
	t.Helper()
	gs, err := NewGenesis(st, "g", "PARTI_g", chunk, "test", "")
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Record
	for p, g := range gs {
		r := events.NewRecord(first+uint64(p), fixedTime(first+uint64(p)), "parti.g2.log", nil, events.MustEncode(events.MaxVersion, g))
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		out = append(out, r)
	}
	return out
}

// A new-generation log that starts with a genesis folds to the old state,
// in one part or many; members of the old IDs then take their partitions
// over with zero moves and tokens above every old one.
func TestGenesisStartsANewGenerationFromTheOldState(t *testing.T) {
	for _, chunk := range []int{1 << 20, 200} {
		old := oldGeneration(t)
		recs := genesisRecords(t, old.s, old.seq+5, chunk)
		if chunk == 200 && len(recs) < 3 {
			t.Fatalf("%d parts: the test wants several", len(recs))
		}
		s := New()
		for i, r := range recs {
			out := Apply(s, r)
			want := Partial
			if i == len(recs)-1 {
				want = Applied
			}
			if out.Kind != want {
				t.Fatalf("part %d of %d: %v (%s), want %v", i, len(recs), out.Kind, out.Reason, want)
			}
		}
		if err := CheckInvariants(s); err != nil {
			t.Fatal(err)
		}
		last := recs[len(recs)-1].Seq
		if s.LastSeq != last {
			t.Fatalf("LastSeq %d, want the genesis's last sequence %d", s.LastSeq, last)
		}
		// The durable content is the old one (but the sequence and the
		// count of the genesis itself).
		want := old.s.Clone()
		want.LastSeq = last
		want.Counters.Applied++
		if diff := cmp.Diff(want, s, stateCmp, cmpopts.IgnoreFields(State{}, "prevSeq")); diff != "" {
			t.Fatalf("state after genesis (-old +new):\n%s", diff)
		}
		// Continue folding on the new log: the old IDs come back.
		nf := &folder{t: t, s: s, seq: last}
		for _, id := range []string{"a", "b", "c"} {
			nf.join(id)
			if n := nf.decide(); n != 0 {
				t.Fatalf("takeover of %s moved %d", id, n)
			}
		}
		for i, o := range s.Owners {
			if o.Owner != old.s.Owners[i].Owner {
				t.Fatalf("partition %d moved from %s to %s", i, old.s.Owners[i].Owner, o.Owner)
			}
			if o.Token <= old.seq || o.Inc != old.s.Owners[i].Inc+1 {
				t.Fatalf("partition %d: token %s after the takeover, the old log ended at %d", i, o.FencingToken(), old.seq)
			}
		}
	}
}

// A genesis applies only at the start of a fold, only with the hash of the
// state it carries, and only after the log it carries.
func TestGenesisIsRefusedWhereItCannotBeTrusted(t *testing.T) {
	old := oldGeneration(t)
	good := genesisRecords(t, old.s, old.seq+1, 1<<20)[0]
	reencode := func(seq uint64, edit func(g *events.Genesis)) events.Record {
		g := *good.Event.(*events.Genesis)
		edit(&g)
		return events.NewRecord(seq, fixedTime(seq), good.Subject, nil, events.MustEncode(events.MaxVersion, &g))
	}
	cases := []struct {
		name   string
		state  *State
		rec    events.Record
		reason string
	}{
		{"after other records", old.s.Clone(), reencode(old.seq+1, func(*events.Genesis) {}), "genesis after the start of the log"},
		{"wrong hash", New(), reencode(old.seq+1, func(g *events.Genesis) { g.Hash = "00" }), "genesis state does not verify"},
		{"no hash", New(), reencode(old.seq+1, func(g *events.Genesis) { g.Hash = "" }), "genesis without a hash"},
		{"tampered state", New(), reencode(old.seq+1, func(g *events.Genesis) {
			g.State = append([]byte(nil), g.State...)
			g.State[len(g.State)-2] ^= 1
		}), "genesis state does not verify"},
		{"not after its log", New(), reencode(old.seq, func(*events.Genesis) {}), "genesis does not follow the log it carries"},
		{"wrong sequence", New(), reencode(old.seq+1, func(g *events.Genesis) { g.UpTo-- }), "genesis state is not the fold up to its sequence"},
		{"second part first", New(), reencode(old.seq+1, func(g *events.Genesis) { g.Part, g.Parts = 1, 2 }), "genesis part out of order"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := c.state.Clone()
			out := Apply(c.state, c.rec)
			if out.Kind != Ignored || out.Reason != c.reason {
				t.Fatalf("%v (%s), want ignored (%s)", out.Kind, out.Reason, c.reason)
			}
			if len(c.state.Members) != len(before.Members) || len(c.state.Partitions) != len(before.Partitions) {
				t.Fatal("an ignored genesis changed the state")
			}
		})
	}
	// A genesis interrupted by another record is abandoned like any
	// multi-part event: nothing of it applies.
	recs := genesisRecords(t, old.s, old.seq+1, 200)
	s := New()
	Apply(s, recs[0])
	claim, _ := Claim("z", "nz", 0)
	Apply(s, events.NewRecord(recs[0].Seq+1, fixedTime(1), "parti.g2.log", nil, events.MustEncode(events.MaxVersion, claim)))
	if len(s.Partitions) != 0 || s.Members["a"] != nil {
		t.Fatal("an interrupted genesis applied")
	}
}

// FuzzGenesis folds a genesis whose state is arbitrary bytes with their own
// (so matching) hash, as the first record of a log, then a few records after
// it: a forged genesis never panics the fold, and whatever it restores
// keeps the invariants.
func FuzzGenesis(f *testing.F) {
	old := New()
	for i, id := range []string{"a", "b"} {
		c, _ := Claim(id, "n"+id, 0)
		Apply(old, events.NewRecord(uint64(i+1), fixedTime(1), "parti.g.log", nil, events.MustEncode(events.MaxVersion, c)))
	}
	good, _, _ := Snapshot(old)
	f.Add(good, uint8(0))
	f.Add([]byte(`{"last_seq":2,"members":{"a":null},"order":["a"]}`), uint8(1))
	f.Add([]byte(`{"last_seq":2,"partitions":["x","x"],"owners":[{"owner":"a","inc":1,"token":9}]}`), uint8(2))
	f.Add([]byte(`{"last_seq":2,"members":{"a":{"id":"b","inc":1}},"order":["a","a"],"owners":[{"target":"a"}]}`), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, after uint8) {
		s := New()
		g := &events.Genesis{FromGroup: "g", UpTo: 2, Hash: Hash(data), State: data}
		r := events.NewRecord(10, fixedTime(10), "parti.g2.log", nil, events.MustEncode(events.MaxVersion, g))
		out := Apply(s, r)
		if out.Kind == Applied {
			if err := CheckInvariants(s); err != nil {
				t.Fatalf("a restored genesis breaks the invariants: %v", err)
			}
		}
		// The fold goes on from whatever it restored.
		seq := uint64(10)
		for i := range int(after % 8) {
			seq++
			var ev events.Event
			switch i % 4 {
			case 0:
				ev = &events.MemberClaimed{ID: "a", Nonce: fmt.Sprintf("z%d", i)}
			case 1:
				ev = &events.MemberRemoved{Member: "a", Incarnation: 1, Reason: events.ReasonForced}
			case 2:
				ev = &events.MemberClosing{Member: "b", Incarnation: 1}
			case 3:
				ev = &events.GraceEnded{Member: "b", Incarnation: 1}
			}
			Apply(s, events.NewRecord(seq, fixedTime(seq), "parti.g2.log", nil, events.MustEncode(events.MaxVersion, ev)))
			if err := CheckInvariants(s); err != nil {
				t.Fatalf("after %T: %v", ev, err)
			}
		}
	})
}
