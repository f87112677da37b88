// Package contracttest holds the table of handler-contract cases that
// every driver of rawmember.Handoff must pass: parti.Member against a real
// server (package test), partitest's in-memory group and the simulator's
// scripted, fault-free world (test/sim). A case drives a
// group through a Driver and checks the Handler calls each member received:
// which, in which order, with which reason.
package contracttest

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/parti-io/parti"
)

// Call is one Handler call as recorded.
type Call struct {
	Revoke    bool
	Partition string
	Index     uint32
	Why       parti.RevokeReason // zero for Assigned
}

func (c Call) String() string {
	if c.Revoke {
		return fmt.Sprintf("-%s(%d,%s)", c.Partition, c.Index, c.Why)
	}
	return fmt.Sprintf("+%s(%d)", c.Partition, c.Index)
}

// Recorder records the Handler calls of every process, by name.
type Recorder struct {
	mu    sync.Mutex
	calls map[string][]Call
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{calls: map[string][]Call{}} }

// Handler returns the Handler of the process named name.
func (r *Recorder) Handler(name string) parti.Handler {
	add := func(c Call) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls[name] = append(r.calls[name], c)
	}
	return parti.HandlerFuncs{
		OnAssigned: func(a parti.Assignment) { add(Call{Partition: a.Partition, Index: a.Index}) },
		OnRevoked: func(a parti.Assignment, why parti.RevokeReason) {
			add(Call{Revoke: true, Partition: a.Partition, Index: a.Index, Why: why})
		},
	}
}

// Calls returns the calls of name from position from on.
func (r *Recorder) Calls(name string, from int) []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls[name][min(from, len(r.calls[name])):])
}

// Mark returns the number of calls name received so far.
func (r *Recorder) Mark(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls[name])
}

// Held returns what name's Handler holds: assigned and not revoked since,
// sorted.
func (r *Recorder) Held(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	held := map[string]bool{}
	for _, c := range r.calls[name] {
		held[c.Partition] = !c.Revoke
	}
	var out []string
	for p, h := range held {
		if h {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// Driver runs one group. Its methods fail the test on error; each returns
// once what it started is done (Settle: the group is settled and every
// Handler holds what the log gives its member).
type Driver interface {
	// Join starts a process named name claiming ID id, with the Recorder's
	// Handler for name.
	Join(t *testing.T, id, name string)
	Settle(t *testing.T)
	Leave(t *testing.T, id string)
	Close(t *testing.T, id string)
	// SetPartitions makes the member id declare ids (it leads).
	SetPartitions(t *testing.T, id string, ids []string)
}

// Partitions returns the partition IDs of a case with n partitions.
func Partitions(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("c-%02d", i)
	}
	return out
}

// Case is one contract case.
type Case struct {
	Name       string
	Partitions int
	Run        func(t *testing.T, d Driver, r *Recorder)
}

// Run runs every case, each on a fresh group from newDriver.
func Run(t *testing.T, newDriver func(t *testing.T, c Case, r *Recorder) Driver) {
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			r := NewRecorder()
			c.Run(t, newDriver(t, c, r), r)
		})
	}
}

// expect checks that calls are, in order, revocations (with why) or
// assignments (why 0) of exactly parts, sorted by index.
func expect(t *testing.T, who string, calls []Call, revoke bool, why parti.RevokeReason, parts []string) {
	t.Helper()
	got := make([]string, 0, len(calls))
	for _, c := range calls {
		if c.Revoke != revoke || c.Why != why {
			t.Errorf("%s: call %v, want only %s", who, c, kind(revoke, why))
		}
		got = append(got, c.Partition)
	}
	if !slices.IsSortedFunc(calls, func(x, y Call) int { return cmp.Compare(x.Index, y.Index) }) {
		t.Errorf("%s: calls %v are not in index order", who, calls)
	}
	want := slices.Clone(parts)
	slices.Sort(want)
	sorted := slices.Clone(got)
	slices.Sort(sorted)
	if !slices.Equal(sorted, want) {
		t.Errorf("%s: %s of %v, want of %v", who, kind(revoke, why), sorted, want)
	}
}

func kind(revoke bool, why parti.RevokeReason) string {
	if revoke {
		return "Revoked(" + why.String() + ")"
	}
	return "Assigned"
}

// Cases is the contract table.
var Cases = []Case{
	{
		Name: "a lone member is assigned every partition in index order", Partitions: 6,
		Run: func(t *testing.T, d Driver, r *Recorder) {
			d.Join(t, "a", "a")
			d.Settle(t)
			expect(t, "a", r.Calls("a", 0), false, 0, Partitions(6))
		},
	},
	{
		Name: "a joiner's partitions are revoked from the giver as moved, in index order, then assigned", Partitions: 8,
		Run: func(t *testing.T, d Driver, r *Recorder) {
			d.Join(t, "a", "a")
			d.Settle(t)
			from := r.Mark("a")
			before := r.Held("a")
			d.Join(t, "b", "b")
			d.Settle(t)
			got := r.Held("b")
			if len(got) == 0 || len(got) == len(before) {
				t.Fatalf("b holds %v after the rebalance, want some of %v", got, before)
			}
			expect(t, "a", r.Calls("a", from), true, parti.RevokeMoved, got)
			expect(t, "b", r.Calls("b", 0), false, 0, got)
		},
	},
	{
		Name: "partitions left out of a new declaration are revoked as dropped, in index order", Partitions: 6,
		Run: func(t *testing.T, d Driver, r *Recorder) {
			d.Join(t, "a", "a")
			d.Settle(t)
			from := r.Mark("a")
			d.SetPartitions(t, "a", Partitions(6)[:3])
			d.Settle(t)
			expect(t, "a", r.Calls("a", from), true, parti.RevokeDropped, Partitions(6)[3:])
		},
	},
	{
		Name: "a leave revokes everything as stopped, in index order, and the other member gets it", Partitions: 8,
		Run: func(t *testing.T, d Driver, r *Recorder) {
			d.Join(t, "a", "a")
			d.Join(t, "b", "b")
			d.Settle(t)
			held, from, fromB := r.Held("a"), r.Mark("a"), r.Mark("b")
			d.Leave(t, "a")
			expect(t, "a", r.Calls("a", from), true, parti.RevokeStopped, held)
			d.Settle(t)
			expect(t, "b", r.Calls("b", fromB), false, 0, held)
		},
	},
	{
		Name: "a close revokes everything as stopped, in index order; the restart gets it back and nothing else moves", Partitions: 8,
		Run: func(t *testing.T, d Driver, r *Recorder) {
			d.Join(t, "a", "a")
			d.Join(t, "b", "b")
			d.Settle(t)
			held, from, fromB := r.Held("a"), r.Mark("a"), r.Mark("b")
			d.Close(t, "a")
			expect(t, "a", r.Calls("a", from), true, parti.RevokeStopped, held)
			d.Join(t, "a", "a#2")
			d.Settle(t)
			expect(t, "a#2", r.Calls("a#2", 0), false, 0, held)
			if calls := r.Calls("b", fromB); len(calls) != 0 {
				t.Errorf("b: calls %v across a's restart, want none", calls)
			}
		},
	},
}
