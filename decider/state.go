package decider

import (
	"maps"
	"slices"

	"github.com/parti-io/parti/events"
)

// Member is one granted incarnation that is still part of the group: live,
// leaving (handing its partitions off), or closing (restart grace).
type Member struct {
	ID          string `json:"id"`
	Incarnation uint64 `json:"inc"`
	Nonce       string `json:"nonce"`
	// JoinSeq is the log sequence of the grant: join order, which derives the
	// leader and the judging ring.
	JoinSeq     uint64 `json:"join_seq"`
	MaxProtocol uint16 `json:"max_protocol"`
	// Labels and Capacity come from the claim (see events.MemberClaimed);
	// Capacity 0 means 1.
	Labels   []string `json:"labels,omitempty"`
	Capacity uint32   `json:"capacity,omitempty"`
	// Leaving is set by a graceful leave: the member gets no partitions and
	// is gone once it has released the last one.
	Leaving bool `json:"leaving,omitempty"`
	// Closing is set by close-for-restart: the member keeps its partitions
	// until a new incarnation of its ID takes them over or its grace ends.
	Closing bool `json:"closing,omitempty"`
	// Cordoned members keep what they own and get nothing new.
	Cordoned bool `json:"cordoned,omitempty"`
	// Draining members get everything moved off them.
	Draining bool `json:"draining,omitempty"`
	// Forced is the log sequence of an operator's force-expire naming this
	// incarnation (0: none). A forced member gets no partitions; it is
	// removed, like an expired one, by a verdict on its heartbeat subject
	// and a removal appended once its lease can no longer be valid.
	Forced uint64 `json:"forced,omitempty"`

	// owns and targets count the partitions this incarnation owns and the
	// moves in flight to it; ownHead and tgtHead start the lists of those
	// partitions (see index.go): the fold's per-member index, so that a
	// leave, a close, a removal or a takeover touches only the member's own
	// partitions. Derived (reindex), never serialised.
	owns, targets    int
	ownHead, tgtHead int32
}

// Live reports whether m is a live member: not leaving and not closing. Live
// members heartbeat, judge and are judged, and may lead.
func (m *Member) Live() bool { return !m.Leaving && !m.Closing }

// Eligible reports whether m may be given partitions.
func (m *Member) Eligible() bool { return m.Live() && !m.Cordoned && !m.Draining && m.Forced == 0 }

// PendingClaim is a claim that waits in the fold for its ID to become free.
type PendingClaim struct {
	ID          string `json:"id"`
	Nonce       string `json:"nonce"`
	Seq         uint64 `json:"seq"`
	MaxProtocol uint16 `json:"max_protocol"`

	// Labels and Capacity are the claim's (see events.MemberClaimed).
	Labels   []string `json:"labels,omitempty"`
	Capacity uint32   `json:"capacity,omitempty"`
}

// Ownership is one partition's owner, its fencing token, and the move in
// flight, if any.
type Ownership struct {
	// Owner is the owning member's ID ("" = unowned).
	Owner string `json:"owner,omitempty"`
	// Inc is the owner's incarnation.
	Inc uint64 `json:"inc,omitempty"`
	// Token is the log sequence at which this ownership took effect.
	Token uint64 `json:"token,omitempty"`
	// Target, when set, is where the partition moves once Owner releases it
	// or is removed.
	Target    string `json:"target,omitempty"`
	TargetInc uint64 `json:"target_inc,omitempty"`
}

// FencingToken returns the token applications pass to their storage.
func (o Ownership) FencingToken() events.Token {
	return events.Token{Seq: o.Token, Incarnation: o.Inc}
}

// Rejection records the last decision the fold rejected.
type Rejection struct {
	Seq        uint64 `json:"seq"`
	Generation uint64 `json:"gen"`
	Reason     string `json:"reason"`
}

// Counters count what the fold did not apply.
type Counters struct {
	// Applied counts records that changed or confirmed the state.
	Applied uint64 `json:"applied"`
	// Skipped counts garbage: undecodable records, unknown types, events
	// that do not belong on the log.
	Skipped uint64 `json:"skipped"`
	// Ignored counts well-formed events that did not apply at their
	// position (a stale release, a removal of a member already gone, ...).
	Ignored uint64 `json:"ignored"`
	// Rejected counts decisions rejected at their position.
	Rejected uint64 `json:"rejected"`
}

// State is the durable state of a group: a pure fold of its log subject.
// Apply mutates it in place; use Clone for a frozen copy.
type State struct {
	// Protocol is the group's protocol version (0 until set: version 1 rules).
	Protocol uint16 `json:"protocol"`
	// LastSeq is the sequence of the last log record folded.
	LastSeq uint64 `json:"last_seq"`
	// Members holds granted incarnations still in the group, by ID.
	Members map[string]*Member `json:"members"`
	// Order lists Members' IDs in join order.
	Order []string `json:"order"`
	// LastInc is the last incarnation granted per ID (also for IDs now gone).
	LastInc map[string]uint64 `json:"last_inc"`
	// Pending holds claims waiting for their ID, in log order.
	Pending []PendingClaim `json:"pending,omitempty"`
	// Spent holds every nonce a claim was granted with, with the grant's
	// sequence, also after its incarnation is gone: a nonce once granted is
	// never granted again, so a dead incarnation's claim published again (a
	// stale or confused process, a replay) cannot come back as a ghost. It
	// grows with the incarnations granted, like the log.
	Spent map[string]uint64 `json:"spent,omitempty"`

	// DeclVersion is the version of the declared partition set.
	DeclVersion uint64 `json:"decl_version"`
	// Partitions is the declared set; decisions refer to it by index.
	Partitions []string `json:"partitions"`
	// Weights is nil (all 1) or parallel to Partitions.
	Weights []uint32 `json:"weights,omitempty"`
	// Strategy is the declared strategy name.
	Strategy string `json:"strategy"`
	// Classes and ClassOf are the declared constraint classes: ClassOf is
	// nil (no partition constrained) or parallel to Partitions.
	Classes []events.Class `json:"classes,omitempty"`
	ClassOf []uint32       `json:"class_of,omitempty"`
	// Owners is parallel to Partitions.
	Owners []Ownership `json:"owners"`
	// Retired holds, by partition ID, the ownership a re-declaration
	// dropped while the partition was owned. The owner folds the drop (and
	// stops acting on it) at its own pace and never releases it: were the ID
	// declared again before, handing it to anyone else at once would give it
	// two owners. So a re-declared ID whose retired owner is still the same
	// incarnation goes back to it (with a new token, as it has a new index)
	// and moves on only through its release. Entries of incarnations no
	// longer members are dropped at the next declaration; the others stay
	// while their owner does (a bound: the IDs dropped during its life).
	Retired map[string]Ownership `json:"retired,omitempty"`

	// Generation is the generation of the last accepted decision.
	Generation uint64 `json:"generation"`
	// Window is true while a join window is open.
	Window bool `json:"window"`
	// WindowReason says why the window opened.
	WindowReason string `json:"window_reason,omitempty"`
	// WindowSince is the log sequence at which the window opened.
	WindowSince uint64 `json:"window_since,omitempty"`
	// Paused is set by the operator: no rebalancing, orphans are still
	// re-owned.
	Paused bool `json:"paused,omitempty"`
	// NewerVersionAt is the sequence of the valid version-set event that
	// raised the group's protocol above what this build speaks; a member
	// stops acting from there. Other records of an unknown version are
	// skipped as garbage and do not set it.
	NewerVersionAt uint64 `json:"newer_version_at,omitempty"`
	// LastRejection is the last decision rejected at its position.
	LastRejection *Rejection `json:"last_rejection,omitempty"`
	// Counters counts applied, skipped, ignored and rejected records.
	Counters Counters `json:"counters"`

	index   partIndex
	partial *partial
	prevSeq uint64
	ownL    links // per-member lists of owned partitions
	tgtL    links // per-member lists of partitions moving to the member
}

// partial accumulates a multi-part declaration or decision.
type partial struct {
	firstSeq uint64
	decl     *events.PartitionsDeclared
	decision *events.AssignmentDecided
	genesis  *events.Genesis
	next     int
	parts    int
}

// New returns the empty state of a group that has seen no record.
func New() *State {
	return &State{
		Members: map[string]*Member{},
		LastInc: map[string]uint64{},
	}
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	c := *s
	c.Members = make(map[string]*Member, len(s.Members))
	//parti:unordered copies into a map
	for k, m := range s.Members {
		mm := *m
		c.Members[k] = &mm
	}
	c.Order = slices.Clone(s.Order)
	c.LastInc = maps.Clone(s.LastInc)
	c.Pending = slices.Clone(s.Pending)
	c.Partitions = slices.Clone(s.Partitions)
	c.Weights = slices.Clone(s.Weights)
	c.Classes = slices.Clone(s.Classes)
	c.ClassOf = slices.Clone(s.ClassOf)
	c.Owners = slices.Clone(s.Owners)
	c.index = s.index // never changed in place
	c.ownL = s.ownL.clone()
	c.tgtL = s.tgtL.clone()
	c.Retired = maps.Clone(s.Retired)
	c.Spent = maps.Clone(s.Spent)
	if s.LastRejection != nil {
		r := *s.LastRejection
		c.LastRejection = &r
	}
	if s.partial != nil {
		p := *s.partial
		if p.decl != nil {
			d := *p.decl
			d.IDs = slices.Clone(d.IDs)
			d.Weights = slices.Clone(d.Weights)
			d.ClassOf = slices.Clone(d.ClassOf)
			p.decl = &d
		}
		if p.decision != nil {
			d := *p.decision
			d.Moves = slices.Clone(d.Moves)
			p.decision = &d
		}
		if p.genesis != nil {
			g := *p.genesis
			g.State = slices.Clone(g.State)
			p.genesis = &g
		}
		c.partial = &p
	}
	return &c
}

// PartitionIndex returns the index of partition id in the declared set.
func (s *State) PartitionIndex(id string) (uint32, bool) {
	return s.index.lookup(id)
}

// Member returns the member with id (any status) or nil.
func (s *State) Member(id string) *Member { return s.Members[id] }

// Incarnation reports whether (id, inc) is a member of the group now.
func (s *State) Incarnation(id string, inc uint64) *Member {
	m := s.Members[id]
	if m == nil || m.Incarnation != inc {
		return nil
	}
	return m
}

// GrantedTo returns the member whose grant named nonce, or nil: a process is
// an incarnation only if the folded grant names its nonce.
func (s *State) GrantedTo(nonce string) *Member {
	for _, id := range s.Order {
		if m := s.Members[id]; m.Nonce == nonce {
			return m
		}
	}
	return nil
}

// Leader returns the derived leader: the live member granted first. ok is
// false when there is no live member.
func (s *State) Leader() (m *Member, ok bool) {
	for _, id := range s.Order {
		if m := s.Members[id]; m.Live() {
			return m, true
		}
	}
	return nil, false
}

// IsLeader reports whether (id, inc) is the derived leader.
func (s *State) IsLeader(id string, inc uint64) bool {
	l, ok := s.Leader()
	return ok && l.ID == id && l.Incarnation == inc
}

// LiveMembers returns the live members in join order.
func (s *State) LiveMembers() []*Member {
	out := make([]*Member, 0, len(s.Order))
	for _, id := range s.Order {
		if m := s.Members[id]; m.Live() {
			out = append(out, m)
		}
	}
	return out
}

// Victim returns the member that (id, inc) judges: the member just before it
// in join order among the live and the leaving members; the first judges the
// last. A leaving member is in the ring, judging and judged: it still
// heartbeats until it has released its last partition, and one that crashes
// halfway through its leave must be expired, or the partitions it never
// released (and its ID) would stay stuck forever. ok is false when (id, inc)
// is neither live nor leaving, or is alone.
func (s *State) Victim(id string, inc uint64) (victim *Member, ok bool) {
	ring := make([]*Member, 0, len(s.Order))
	for _, mid := range s.Order {
		if m := s.Members[mid]; m.Live() || m.Leaving {
			ring = append(ring, m)
		}
	}
	for i, m := range ring {
		if m.ID == id && m.Incarnation == inc {
			if len(ring) < 2 {
				return nil, false
			}
			j := i - 1
			if j < 0 {
				j = len(ring) - 1
			}
			return ring[j], true
		}
	}
	return nil, false
}

// Owned returns the indices of the partitions (id, inc) owns, ascending,
// including those it is asked to give up (Target set).
func (s *State) Owned(id string, inc uint64) []uint32 {
	var out []uint32
	for i := range s.Owners {
		if o := &s.Owners[i]; o.Owner == id && o.Inc == inc {
			out = append(out, uint32(i))
		}
	}
	return out
}

// Unowned returns the number of declared partitions that have no owner.
func (s *State) Unowned() int {
	n := 0
	for i := range s.Owners {
		if s.Owners[i].Owner == "" {
			n++
		}
	}
	return n
}

// InFlight returns the number of partitions with a move waiting for release.
func (s *State) InFlight() int {
	n := 0
	for i := range s.Owners {
		if s.Owners[i].Target != "" {
			n++
		}
	}
	return n
}

// Phase is the group's phase, derived from the durable state.
type Phase int

// Group phases (DESIGN "The state machine").
const (
	PhaseColdStart Phase = iota
	PhaseScaling
	PhaseRebalancing
	PhaseEmergency
	PhaseStable
)

func (p Phase) String() string {
	switch p {
	case PhaseColdStart:
		return "cold-start"
	case PhaseScaling:
		return "scaling"
	case PhaseRebalancing:
		return "rebalancing"
	case PhaseEmergency:
		return "emergency"
	case PhaseStable:
		return "stable"
	}
	return "unknown"
}

// Phase derives the group's phase: cold start until the first decision, then
// scaling while a window is open, emergency while a partition has no owner,
// rebalancing while moves are in flight, and stable otherwise. Whether a
// further decision is needed is Decide's to say.
func (s *State) Phase() Phase {
	switch {
	case s.Window && s.Generation == 0:
		return PhaseColdStart
	case s.Window:
		return PhaseScaling
	case s.Generation == 0 && len(s.Partitions) > 0:
		return PhaseColdStart
	case len(s.Partitions) > 0 && s.Unowned() > 0:
		return PhaseEmergency
	case s.InFlight() > 0:
		return PhaseRebalancing
	}
	return PhaseStable
}

// MemberPhase is a member's phase as the durable state shows it.
type MemberPhase int

// Member phases. Init and claiming happen before the fold knows the process;
// shutdown after it left.
const (
	MemberUnknown MemberPhase = iota
	MemberClaiming
	MemberWaiting
	MemberStable
	MemberLeaving
	MemberClosing
	MemberGone
)

func (p MemberPhase) String() string {
	return [...]string{"unknown", "claiming", "waiting", "stable", "leaving", "closing", "gone"}[p]
}

// PhaseOf returns the phase of the process that claimed with nonce.
func (s *State) PhaseOf(nonce string) MemberPhase {
	if m := s.GrantedTo(nonce); m != nil {
		switch {
		case m.Leaving:
			return MemberLeaving
		case m.Closing:
			return MemberClosing
		}
		for i := range s.Owners {
			o := &s.Owners[i]
			if o.Target == m.ID && o.TargetInc == m.Incarnation {
				return MemberWaiting
			}
		}
		if s.Window || s.Generation == 0 {
			return MemberWaiting
		}
		return MemberStable
	}
	for _, c := range s.Pending {
		if c.Nonce == nonce {
			return MemberClaiming
		}
	}
	return MemberUnknown
}

func (s *State) rebuildIndex() {
	// A snapshot's set was declared once, so it has no duplicate.
	s.index, _ = newPartIndex(s.Partitions)
	s.reindex()
}
