package decider

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/parti-io/parti/events"
)

// folder is a tiny in-memory log for tests: it numbers records, folds them and
// checks the invariants after every one.
type folder struct {
	t   testing.TB
	s   *State
	seq uint64
	log []events.Record
}

func newFolder(t testing.TB) *folder { return &folder{t: t, s: New()} }

func (f *folder) rec(ev events.Event) events.Record {
	f.seq++
	body := events.MustEncode(events.MaxVersion, ev)
	r := events.NewRecord(f.seq, fixedTime(f.seq), "parti.g.log", nil, body)
	if r.Err != nil {
		f.t.Fatalf("encode/decode %T: %v", ev, r.Err)
	}
	return r
}

func (f *folder) apply(ev events.Event) Outcome {
	f.t.Helper()
	r := f.rec(ev)
	f.log = append(f.log, r)
	out := Apply(f.s, r)
	if err := CheckInvariants(f.s); err != nil {
		f.t.Fatalf("after seq %d (%T): invariants: %v", r.Seq, ev, err)
	}
	return out
}

func (f *folder) mustApply(ev events.Event) {
	f.t.Helper()
	if out := f.apply(ev); out.Kind != Applied {
		f.t.Fatalf("seq %d %T: %v (%s), want applied", f.seq, ev, out.Kind, out.Reason)
	}
}

func (f *folder) join(id string) *Member {
	f.t.Helper()
	nonce := "n-" + id + fmt.Sprint(f.seq)
	c, err := Claim(id, nonce, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	f.mustApply(c)
	m := f.s.GrantedTo(nonce)
	if m == nil {
		f.t.Fatalf("claim %s not granted", id)
	}
	return m
}

func (f *folder) leader() *Member {
	f.t.Helper()
	l, ok := f.s.Leader()
	if !ok {
		f.t.Fatal("no leader")
	}
	return l
}

func (f *folder) declare(n int) {
	f.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("p-%04d", i)
	}
	l := f.leader()
	ds, err := Declare(f.s, l.ID, l.Incarnation, ids, nil, "", 0)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, d := range ds {
		f.apply(d)
	}
}

func (f *folder) closeWindow() {
	f.t.Helper()
	l := f.leader()
	w, err := CloseWindow(f.s, l.ID, l.Incarnation, 100)
	if err != nil {
		f.t.Fatal(err)
	}
	f.mustApply(w)
}

// decide runs Decide as the leader and applies the decision; it returns the
// number of partitions moved (0 and no record when nothing needs to move).
func (f *folder) decide() int {
	f.t.Helper()
	l := f.leader()
	d, err := Decide(f.s, l.ID, l.Incarnation)
	if err != nil {
		f.t.Fatal(err)
	}
	if d == nil {
		return 0
	}
	f.mustApply(d)
	n := 0
	for _, m := range d.Moves {
		n += m.Parts.Len()
	}
	return n
}

// releaseAll has every member release what it is asked to give up.
func (f *folder) releaseAll() {
	f.t.Helper()
	for _, id := range append([]string(nil), f.s.Order...) {
		m := f.s.Members[id]
		if m == nil || m.Closing {
			continue
		}
		if r := Release(f.s, m.ID, m.Incarnation, false); r != nil {
			f.mustApply(r)
		}
	}
}

// settle decides and releases until nothing moves.
func (f *folder) settle() {
	f.t.Helper()
	for range 10 {
		if f.decide() == 0 && f.s.InFlight() == 0 {
			return
		}
		f.releaseAll()
	}
	f.t.Fatal("did not settle")
}

func (f *folder) counts() map[string]int {
	c := map[string]int{}
	for _, o := range f.s.Owners {
		c[o.Owner]++
	}
	return c
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
}

// stateCmp compares states by their durable content: the per-member index
// (list order depends on the path that built it) is derived and ignored.
var stateCmp = cmp.Options{
	cmp.AllowUnexported(State{}, Member{}),
	cmpopts.IgnoreFields(State{}, "ownL", "tgtL"),
	cmpopts.IgnoreFields(Member{}, "ownHead", "tgtHead"),
	cmp.Comparer(func(a, b partIndex) bool { return slices.Equal(a.ids, b.ids) && slices.Equal(a.perm, b.perm) }),
}
