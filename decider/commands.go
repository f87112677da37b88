package decider

import (
	"fmt"
	"slices"

	"github.com/parti-io/parti/events"
)

// The commands below turn an intention into the event to append, after
// checking it against the state. None reads a clock: what took time (a window,
// a grace, an expiry) was measured by the caller and arrives as an argument.

// Claim returns a member's claim of id ("" for the lowest free worker slot)
// with the process's nonce.
func Claim(id, nonce string, maxProtocol uint16) (*events.MemberClaimed, error) {
	if id != "" {
		if err := events.ValidID(id); err != nil {
			return nil, fmt.Errorf("decider: claim: %w", err)
		}
	}
	if nonce == "" {
		return nil, fmt.Errorf("%w: claim needs a nonce", ErrInvalidCommand)
	}
	if maxProtocol == 0 {
		maxProtocol = events.MaxVersion
	}
	return &events.MemberClaimed{ID: id, Nonce: nonce, MaxProtocol: maxProtocol}, nil
}

func (s *State) needMember(id string, inc uint64) (*Member, error) {
	m := s.Incarnation(id, inc)
	if m == nil {
		return nil, fmt.Errorf("%w: %s/%d", ErrNotMember, id, inc)
	}
	return m, nil
}

func (s *State) needLeader(id string, inc uint64) error {
	if !s.IsLeader(id, inc) {
		return fmt.Errorf("%w: %s/%d", ErrNotLeader, id, inc)
	}
	return nil
}

// Leave returns a graceful leave of (id, inc).
func Leave(s *State, id string, inc uint64) (*events.MemberLeft, error) {
	if _, err := s.needMember(id, inc); err != nil {
		return nil, err
	}
	return &events.MemberLeft{Member: id, Incarnation: inc}, nil
}

// CloseForRestart returns the close-for-restart of (id, inc).
func CloseForRestart(s *State, id string, inc uint64) (*events.MemberClosing, error) {
	if _, err := s.needMember(id, inc); err != nil {
		return nil, err
	}
	return &events.MemberClosing{Member: id, Incarnation: inc}, nil
}

// Release returns the release of the partitions (id, inc) is asked to give up
// (or, with all, of every partition it owns), with the tokens it gives up. It
// returns nil when there is nothing to release.
func Release(s *State, id string, inc uint64, all bool) *events.PartitionsReleased {
	var rel []events.Released
	for i := range s.Owners {
		o := &s.Owners[i]
		if o.Owner == id && o.Inc == inc && (all || o.Target != "") {
			rel = append(rel, events.Released{Partition: uint32(i), Token: o.Token})
		}
	}
	if len(rel) == 0 {
		return nil
	}
	return &events.PartitionsReleased{Member: id, Incarnation: inc, Released: rel}
}

// DefaultMaxIDsPerPart keeps one declaration message well under the default
// 1 MiB message limit.
const DefaultMaxIDsPerPart = 20000

// Declare returns the leader's declaration of the partition set (weights nil
// for all 1), split into parts of at most maxPerPart IDs to publish as one
// atomic batch. The version is the next one. It returns nil when the set,
// weights and strategy are unchanged.
func Declare(s *State, self string, selfInc uint64, ids []string, weights []uint32, strategyName string, maxPerPart int) ([]*events.PartitionsDeclared, error) {
	return DeclarePlaced(s, self, selfInc, ids, weights, nil, nil, strategyName, maxPerPart)
}

// DeclarePlaced is Declare with constraint classes: classOf is nil (no
// partition constrained) or parallel to ids, each entry an index into
// classes (see events.Class). Classes repeat in every part; classOf is
// split with the IDs. Invalid classes return an error wrapping
// ErrInvalidPartition.
func DeclarePlaced(s *State, self string, selfInc uint64, ids []string, weights []uint32, classes []events.Class, classOf []uint32, strategyName string, maxPerPart int) ([]*events.PartitionsDeclared, error) {
	if err := s.needLeader(self, selfInc); err != nil {
		return nil, err
	}
	if err := events.ValidPlacement(classes, classOf, len(ids)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPartition, err)
	}
	if len(classOf) == 0 {
		classes, classOf = nil, nil
	}
	if len(weights) != 0 && len(weights) != len(ids) {
		return nil, fmt.Errorf("%w: %d weights for %d partitions", ErrInvalidPartition, len(weights), len(ids))
	}
	seen := make(map[string]struct{}, len(ids))
	for i, id := range ids {
		if err := events.ValidPartitionID(id); err != nil {
			return nil, fmt.Errorf("%w: index %d: %v", ErrInvalidPartition, i, err)
		}
		if _, dup := seen[id]; dup {
			return nil, fmt.Errorf("%w: duplicate %q", ErrInvalidPartition, id)
		}
		seen[id] = struct{}{}
		if len(weights) != 0 && weights[i] == 0 {
			return nil, fmt.Errorf("%w: %q has weight 0", ErrInvalidPartition, id)
		}
	}
	allOne := true
	for _, w := range weights {
		allOne = allOne && w == 1
	}
	if allOne {
		weights = nil
	}
	if strategyName == "" {
		strategyName = s.Strategy
	}
	if s.DeclVersion > 0 && slices.Equal(ids, s.Partitions) && slices.Equal(weights, s.Weights) && strategyName == s.Strategy &&
		slices.Equal(classOf, s.ClassOf) && slices.EqualFunc(classes, s.Classes, sameClass) {
		return nil, nil
	}
	if maxPerPart <= 0 {
		maxPerPart = DefaultMaxIDsPerPart
	}
	parts := max(1, (len(ids)+maxPerPart-1)/maxPerPart)
	out := make([]*events.PartitionsDeclared, 0, parts)
	for p := 0; p < parts; p++ {
		lo, hi := p*maxPerPart, min(len(ids), (p+1)*maxPerPart)
		d := &events.PartitionsDeclared{Version: s.DeclVersion + 1, IDs: ids[lo:hi], Strategy: strategyName, By: self}
		if weights != nil {
			d.Weights = weights[lo:hi]
		}
		if classOf != nil {
			d.Classes, d.ClassOf = classes, classOf[lo:hi]
		}
		if parts > 1 {
			d.Part, d.Parts = p, parts
		}
		out = append(out, d)
	}
	return out, nil
}

func sameClass(a, b events.Class) bool {
	return slices.Equal(a.Require, b.Require) && slices.Equal(a.Prefer, b.Prefer)
}

// CloseWindow returns the leader's closing of the open window, which it
// measured as span milliseconds.
func CloseWindow(s *State, self string, selfInc uint64, spanMillis int64) (*events.WindowClosed, error) {
	if err := s.needLeader(self, selfInc); err != nil {
		return nil, err
	}
	if !s.Window {
		return nil, ErrNoWindow
	}
	return &events.WindowClosed{By: self, SpanMillis: spanMillis}, nil
}

// EndGrace returns the leader's end of (member, inc)'s restart grace, which it
// measured as span milliseconds.
func EndGrace(s *State, self string, selfInc uint64, member string, inc uint64, spanMillis int64) (*events.GraceEnded, error) {
	if err := s.needLeader(self, selfInc); err != nil {
		return nil, err
	}
	m, err := s.needMember(member, inc)
	if err != nil {
		return nil, err
	}
	if !m.Closing {
		return nil, fmt.Errorf("%w: %s/%d", ErrNotClosing, member, inc)
	}
	return &events.GraceEnded{Member: member, Incarnation: inc, SpanMillis: spanMillis}, nil
}

// Remove returns the removal that follows verdict v at sequence verdictSeq.
// It returns ErrNotMember when the victim is already gone (nothing to append).
func Remove(s *State, v *events.ExpiryVerdict, verdictSeq uint64) (*events.MemberRemoved, error) {
	if _, err := s.needMember(v.Member, v.Incarnation); err != nil {
		return nil, err
	}
	return &events.MemberRemoved{
		Member: v.Member, Incarnation: v.Incarnation, Reason: events.ReasonExpired,
		VerdictSeq: verdictSeq, Judge: v.Judge, SpanMillis: v.SpanMillis,
	}, nil
}

// Operator returns an operator action after checking it names what exists.
func Operator(s *State, a events.OperatorAction) (*events.OperatorAction, error) {
	switch a.Action {
	case events.OpPause, events.OpResume:
	case events.OpDrain, events.OpCordon, events.OpUncordon:
		if s.Members[a.Member] == nil {
			return nil, fmt.Errorf("%w: %s", ErrNotMember, a.Member)
		}
	case events.OpForceExpire:
		// It names the incarnation, so that it never hits a newer one
		// than the operator meant; an unnamed one (the old form) would
		// remove the member at once, before its lease ran out.
		if a.Incarnation == 0 {
			return nil, fmt.Errorf("%w: force-expire of %s names no incarnation", ErrInvalidCommand, a.Member)
		}
		if s.Incarnation(a.Member, a.Incarnation) == nil {
			return nil, fmt.Errorf("%w: %s/%d", ErrNotMember, a.Member, a.Incarnation)
		}
	case events.OpMove:
		if _, ok := s.index.lookup(a.Partition); !ok {
			return nil, fmt.Errorf("%w: unknown partition %q", ErrInvalidPartition, a.Partition)
		}
		t := s.Members[a.Target]
		if t == nil || !t.Eligible() {
			return nil, fmt.Errorf("%w: target %s is not an eligible member", ErrNotMember, a.Target)
		}
		if i, _ := s.index.lookup(a.Partition); !hasLabels(t.Labels, s.Class(int(i)).Require) {
			return nil, fmt.Errorf("%w: %s requires %v, which %s does not carry", ErrInvalidCommand, a.Partition, s.Class(int(i)).Require, a.Target)
		}
	default:
		return nil, fmt.Errorf("%w: unknown operator action %q", ErrInvalidCommand, a.Action)
	}
	return &a, nil
}

// SetProtocol returns the leader's raising of the protocol version, once
// every live member supports it.
func SetProtocol(s *State, self string, selfInc uint64, v uint16) (*events.ProtocolVersionSet, error) {
	if err := s.needLeader(self, selfInc); err != nil {
		return nil, err
	}
	if v <= s.Protocol || v > events.MaxVersion {
		return nil, fmt.Errorf("%w: version %d (current %d, max %d)", ErrInvalidCommand, v, s.Protocol, events.MaxVersion)
	}
	for _, m := range s.LiveMembers() {
		if m.MaxProtocol < v {
			return nil, fmt.Errorf("%w: %s supports only %d", ErrInvalidCommand, m.ID, m.MaxProtocol)
		}
	}
	return &events.ProtocolVersionSet{Version: v, By: self}, nil
}
