package rawmember

import (
	"cmp"
	"slices"
	"time"

	"github.com/parti-io/parti/decider"
)

// Reason says why a partition is revoked from the application. It mirrors
// parti.RevokeReason (same values).
type Reason int

// Revocation reasons.
const (
	// ReasonMoved: the partition moves to another member (or to a new
	// index, with a new token: it is assigned again at once).
	ReasonMoved Reason = iota + 1
	// ReasonLeaseLost: the member's lease lapsed.
	ReasonLeaseLost
	// ReasonStopped: the member stopped, leaves, closes or was removed.
	ReasonStopped
	// ReasonDropped: the partition is no longer in the declared set.
	ReasonDropped
)

func (r Reason) String() string {
	switch r {
	case ReasonMoved:
		return "moved"
	case ReasonLeaseLost:
		return "lease-lost"
	case ReasonStopped:
		return "stopped"
	case ReasonDropped:
		return "dropped"
	}
	return "unknown"
}

// Call is one handler call the application must receive: Revoked(Owned,
// Why) when Revoke, else Assigned(Owned).
type Call struct {
	Revoke bool
	Owned  Owned
	Why    Reason
}

// Ready is what the application must do after a step, in order: every
// revocation (sorted by index), then every assignment (sorted by index).
// The calls are made one at a time, in this order. Reindexed lists the held
// partitions whose index changed (a re-declaration): no call, the
// application's Assignment just names the new index. LetGo reports that the
// member let go of partitions the application no longer held, so a release
// is due (step the member again to append it).
type Ready struct {
	Calls     []Call
	Reindexed []Owned
	LetGo     bool
}

// Handoff is the handler contract between a Member and the application, in
// the manner of etcd raft's Ready: it says which Assigned and Revoked calls
// to make, in which order, with which reason, and it lets go of a partition
// to hand off (Member.LetGo) only once the application no longer holds it
// and every Revoked call for it returned (Returned). parti.Member, partitest
// and the simulator all drive it; it makes no call itself.
//
// It is not safe for concurrent use.
type Handoff struct {
	// held is what is assigned and not revoked, sorted by partition ID: a
	// slice, not a map, because a member may hold 100,000 partitions and a
	// map entry costs three times the Owned it keeps (lookups: isHeld).
	held     []Owned
	revoking map[string]int    // Revoked calls handed out and not returned, by partition ID
	moving   map[string]uint32 // partitions to hand off at the last step: their index
	stopping bool              // Stop was called: nothing is assigned any more
	stopWhy  Reason

	// What the last full Step compared: the member's view generation, and
	// whether that view was acted on. While neither changed, nothing was
	// revoked or returned since (dirty) and nothing is to be handed off,
	// a step has nothing to say and costs nothing, however many
	// partitions the application holds.
	seenGen   uint64
	seenValid bool
	seen      bool
	dirty     bool
}

// NewHandoff returns a Handoff holding nothing.
func NewHandoff() *Handoff {
	return &Handoff{revoking: map[string]int{}, moving: map[string]uint32{}}
}

// Step compares what m may act on at now (its view of s) with what the
// application holds and returns the calls to make. A held partition no
// longer acted on is revoked: ReasonMoved if the fold moves it away (or
// it is acted on with a new token, when a re-declaration changed its index),
// ReasonDropped if it left the declared set, ReasonStopped if m stopped,
// leaves or closes (or Stop was called), ReasonLeaseLost otherwise. It then lets go of every
// partition to hand off that is neither held nor awaiting a Revoked return.
// Call it after m.Step(s, now), with the same s and now.
func (h *Handoff) Step(m *Member, s *decider.State, now time.Duration) Ready {
	valid := m.LeaseValid(now) && !m.closing && !m.leaving
	if h.seen && !h.dirty && !h.stopping && h.seenGen == m.viewGen && h.seenValid == valid &&
		len(h.moving) == 0 && len(m.revoking) == 0 {
		return Ready{}
	}
	rd := h.compare(m, s, m.Owned(now))
	h.seen, h.seenGen, h.seenValid, h.dirty = true, m.viewGen, valid, false
	return rd
}

// compare is Step's full comparison of believed, what the application
// should act on now (m.Owned(now)), with what it holds.
func (h *Handoff) compare(m *Member, s *decider.State, believed []Owned) Ready {
	if h.stopping {
		believed = nil
	}
	clear(h.moving)
	for _, p := range m.Revoking() {
		if int(p) < len(s.Partitions) {
			h.moving[s.Partitions[p]] = p
		}
	}
	// Both sides sorted by partition ID, merged: what is held and still
	// wanted with its token stays, what is held and not wanted is revoked,
	// what is wanted and not held is assigned.
	want := slices.Clone(believed)
	slices.SortFunc(want, func(x, y Owned) int { return cmp.Compare(x.ID, y.ID) })
	var rd Ready
	var assign []Call
	held := make([]Owned, 0, len(want))
	i, j := 0, 0
	for i < len(h.held) || j < len(want) {
		switch {
		case j == len(want) || (i < len(h.held) && h.held[i].ID < want[j].ID):
			// Held, not wanted.
			rd.Calls = append(rd.Calls, h.revoke(h.held[i], h.why(m, s, h.held[i].ID)))
			i++
		case i == len(h.held) || want[j].ID < h.held[i].ID:
			// Wanted, not held.
			held = append(held, want[j])
			assign = append(assign, Call{Owned: want[j]})
			j++
		default:
			o, w := h.held[i], want[j]
			i, j = i+1, j+1
			if w.Token != o.Token {
				// A new token: a re-declaration gave it a new index. Revoked
				// and assigned again.
				rd.Calls = append(rd.Calls, h.revoke(o, ReasonMoved))
				held = append(held, w)
				assign = append(assign, Call{Owned: w})
				continue
			}
			if w.Index != o.Index {
				o.Index = w.Index // a re-declaration moved its index
				rd.Reindexed = append(rd.Reindexed, o)
			}
			held = append(held, o)
		}
	}
	h.held = held
	sortCalls(rd.Calls)
	sortCalls(assign)
	rd.Calls = append(rd.Calls, assign...)
	rd.LetGo = h.letGo(m)
	return rd
}

// Stop revokes everything held with why (Leave, Close, the end of the
// member) and makes later steps assign nothing.
func (h *Handoff) Stop(why Reason) Ready {
	h.stopping, h.stopWhy = true, why
	return h.RevokeAll(why)
}

// RevokeAll revokes everything held with why; a later step may assign
// again (the rejoin of a new incarnation). The partitions to hand off are
// forgotten: they were the old incarnation's.
func (h *Handoff) RevokeAll(why Reason) Ready {
	h.dirty = true
	clear(h.moving)
	var rd Ready
	for _, o := range h.held {
		rd.Calls = append(rd.Calls, h.revoke(o, why))
	}
	h.held = nil
	sortCalls(rd.Calls)
	return rd
}

// Returned records that the Revoked call of Call c returned. If the
// partition is to be handed off and nothing holds it any more, m lets go of
// it; the result says so (a release is due).
func (h *Handoff) Returned(m *Member, c Call) (letGo bool) {
	h.dirty = true
	p := c.Owned.ID
	if h.revoking[p]--; h.revoking[p] <= 0 {
		delete(h.revoking, p)
	}
	if h.isHeld(p) || h.revoking[p] > 0 {
		return false
	}
	if ix, ok := h.moving[p]; ok && m != nil {
		m.LetGo(ix)
		return true
	}
	return false
}

// Held returns what the application holds (assigned and not revoked),
// sorted by index.
func (h *Handoff) Held() []Owned {
	out := slices.Clone(h.held)
	slices.SortFunc(out, func(x, y Owned) int { return cmp.Compare(x.Index, y.Index) })
	return out
}

// Quiet reports whether the application holds nothing and every Revoked call
// returned: a close may then be appended.
func (h *Handoff) Quiet() bool { return len(h.held) == 0 && len(h.revoking) == 0 }

// revoke records that o, no longer held, awaits its Revoked call's return.
func (h *Handoff) revoke(o Owned, why Reason) Call {
	h.revoking[o.ID]++
	return Call{Revoke: true, Owned: o, Why: why}
}

// why says why held partition p, not wanted any more, is revoked.
func (h *Handoff) why(m *Member, s *decider.State, p string) Reason {
	if _, ok := h.moving[p]; ok {
		return ReasonMoved
	}
	if _, ok := s.PartitionIndex(p); !ok {
		return ReasonDropped
	}
	if h.stopping {
		return h.stopWhy
	}
	if m.Stopped() != NotStopped || m.leaving || m.closing {
		return ReasonStopped
	}
	return ReasonLeaseLost
}

// isHeld reports whether the application holds partition p.
func (h *Handoff) isHeld(p string) bool {
	_, ok := slices.BinarySearchFunc(h.held, p, func(o Owned, id string) int { return cmp.Compare(o.ID, id) })
	return ok
}

// letGo lets go of every partition to hand off that nothing holds.
func (h *Handoff) letGo(m *Member) bool {
	done := false
	for _, p := range sortedKeys(h.moving) {
		if h.isHeld(p) || h.revoking[p] > 0 {
			continue
		}
		m.LetGo(h.moving[p])
		done = true
	}
	return done
}

func sortCalls(cs []Call) {
	slices.SortFunc(cs, func(x, y Call) int { return cmp.Compare(x.Owned.Index, y.Owned.Index) })
}
