package strategy

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrUnknownStrategy is wrapped by the error [ByName] returns for a name it
// does not know.
var ErrUnknownStrategy = errors.New("strategy: unknown strategy")

// ErrInvalidInput is wrapped by every error a strategy returns because its
// [Input] (or its own configuration) is malformed. The wrapping error names
// the field and, where there is one, the offending index and value.
var ErrInvalidInput = errors.New("strategy: invalid input")

// Names of the strategies, as [Strategy.Name] reports them and [ByName]
// accepts them. They are recorded in the log, so they never change.
const (
	NameConsistentHash         = "consistent-hash"
	NameRoundRobin             = "round-robin"
	NameWeightedConsistentHash = "weighted-consistent-hash"
	NameSticky                 = "sticky"
	// NamePlacement is declared with [Placement], in placement.go.

	// Default is the name of the recommended strategy: [Sticky].
	Default = NameSticky
)

// DefaultVirtualNodes is the number of ring points per member used when a
// VirtualNodes field is zero, and always by [Sticky].
const DefaultVirtualNodes = 100

// MaxVirtualNodes bounds a VirtualNodes field.
const MaxVirtualNodes = 10_000

// maxRingPoints bounds members × virtual nodes (memory, and int32 indices).
const maxRingPoints = 1 << 26

// Input is everything a strategy sees. A strategy never modifies it.
//
// Partition indices, not IDs, are the currency of the result: result[i] is
// the owner of Partitions[i]. Partition IDs are only hashed; the package does
// not check them for duplicates (the declared set is the decider's business).
type Input struct {
	// Members are the eligible members: non-empty IDs, unique, sorted
	// ascending (byte-wise, as Go compares strings).
	Members []string
	// Partitions are the declared partition IDs; index i is partition i.
	Partitions []string
	// Weights is nil (every partition weighs 1) or has len(Partitions)
	// entries, each >= 1. Only [WeightedConsistentHash] balances weights.
	Weights []uint32
	// Previous is nil (nothing owned yet) or has len(Partitions) entries:
	// the previous owner's ID per partition. "" means the partition had no
	// owner; an ID that is not in Members is a departed member.
	Previous []string

	// The placement fields. Only [Placement] reads them; the other
	// strategies ignore them. All are optional.

	// Labels is nil (no member has labels) or has len(Members) entries:
	// member m's labels, each "key=value" (see [ValidLabel]).
	Labels [][]string
	// Capacities is nil (every member has capacity 1) or has len(Members)
	// entries, each 1 to MaxCapacity: a member's share of load is
	// proportional to its capacity.
	Capacities []uint32
	// Classes are the constraint classes partitions refer to by index.
	Classes []Class
	// ClassOf is nil (no partition is constrained) or has len(Partitions)
	// entries: partition i belongs to Classes[ClassOf[i]].
	ClassOf []uint32
	// Frozen is nil or has len(Members) entries: a frozen member (closing
	// for a restart, cordoned) keeps every previous partition its labels
	// allow and receives none; its load still counts in the shares, so
	// that freezing and thawing it moves nothing else.
	Frozen []bool
}

// Validate reports whether in is well formed: Members non-empty strings,
// strictly ascending; Weights nil or one positive weight per partition;
// Previous nil or one entry per partition. The error wraps [ErrInvalidInput]
// and names what is wrong. Every strategy validates its input first.
func (in Input) Validate() error {
	if len(in.Partitions) > math.MaxInt32 {
		return fmt.Errorf("%w: len(Partitions) = %d exceeds %d", ErrInvalidInput, len(in.Partitions), math.MaxInt32)
	}
	if len(in.Members) > math.MaxInt32 {
		return fmt.Errorf("%w: len(Members) = %d exceeds %d", ErrInvalidInput, len(in.Members), math.MaxInt32)
	}
	for i, m := range in.Members {
		if m == "" {
			return fmt.Errorf("%w: Members[%d] is empty (\"\" means no owner)", ErrInvalidInput, i)
		}
		if i == 0 {
			continue
		}
		switch prev := in.Members[i-1]; {
		case prev == m:
			return fmt.Errorf("%w: Members[%d] = %q is a duplicate", ErrInvalidInput, i, m)
		case prev > m:
			return fmt.Errorf("%w: Members not sorted ascending: Members[%d] = %q sorts before Members[%d] = %q", ErrInvalidInput, i, m, i-1, prev)
		}
	}
	if in.Weights != nil {
		if len(in.Weights) != len(in.Partitions) {
			return fmt.Errorf("%w: len(Weights) = %d, want len(Partitions) = %d (or nil)", ErrInvalidInput, len(in.Weights), len(in.Partitions))
		}
		for i, w := range in.Weights {
			if w == 0 {
				return fmt.Errorf("%w: Weights[%d] (partition %q) is 0, want >= 1", ErrInvalidInput, i, in.Partitions[i])
			}
		}
	}
	if in.Previous != nil && len(in.Previous) != len(in.Partitions) {
		return fmt.Errorf("%w: len(Previous) = %d, want len(Partitions) = %d (or nil)", ErrInvalidInput, len(in.Previous), len(in.Partitions))
	}
	return in.validatePlacement()
}

// Strategy computes a full assignment of partitions to members.
//
// Assign returns a new slice of len(in.Partitions): result[i] is the index
// into in.Members of partition i's owner, or -1 when there are no members.
// Assign is a pure function of in (and of the strategy's own fields): no
// clock, no randomness, no map iteration order; the same input gives the same
// output on every platform and Go version. It never modifies in, and a
// Strategy value is safe for concurrent use. Invalid input returns an error
// wrapping [ErrInvalidInput] and a nil slice.
type Strategy interface {
	// Name is the strategy's stable name, as ByName accepts it. It does not
	// encode non-default parameters.
	Name() string
	// Assign computes the assignment for in; see the type's documentation.
	Assign(in Input) ([]int32, error)
}

// ByName returns the strategy called name, with default parameters:
// "consistent-hash", "round-robin", "weighted-consistent-hash", "placement"
// or "sticky" (the recommended default, see [Default]). Any other name returns an error
// wrapping [ErrUnknownStrategy].
func ByName(name string) (Strategy, error) {
	switch name {
	case NameConsistentHash:
		return ConsistentHash{}, nil
	case NameRoundRobin:
		return RoundRobin{}, nil
	case NameWeightedConsistentHash:
		return WeightedConsistentHash{}, nil
	case NameSticky:
		return Sticky{}, nil
	case NamePlacement:
		return Placement{}, nil
	}
	return nil, fmt.Errorf("%w: %q (known: %q)", ErrUnknownStrategy, name, Names())
}

// Names returns the names [ByName] accepts, sorted.
func Names() []string {
	names := []string{NameConsistentHash, NamePlacement, NameRoundRobin, NameSticky, NameWeightedConsistentHash}
	slices.Sort(names)
	return names
}

// noMembers returns the assignment for an empty member list: all -1.
func noMembers(p int) []int32 {
	out := make([]int32, p)
	for i := range out {
		out[i] = -1
	}
	return out
}

// virtualNodes resolves a VirtualNodes field for n members.
func virtualNodes(field string, v, n int) (int, error) {
	if v == 0 {
		v = DefaultVirtualNodes
	}
	if v < 0 || v > MaxVirtualNodes {
		return 0, fmt.Errorf("%w: %s.VirtualNodes = %d, want 0 (default %d) to %d", ErrInvalidInput, field, v, DefaultVirtualNodes, MaxVirtualNodes)
	}
	if n > 0 && v > maxRingPoints/n {
		return 0, fmt.Errorf("%w: %s: %d members × %d virtual nodes exceeds %d ring points", ErrInvalidInput, field, n, v, maxRingPoints)
	}
	return v, nil
}

// memberIndex maps member IDs to their indices. Lookups only; it is never
// iterated.
func memberIndex(members []string) map[string]int32 {
	idx := make(map[string]int32, len(members))
	for i, m := range members {
		idx[m] = int32(i)
	}
	return idx
}

// previousOwners resolves in.Previous into member indices: owner[i] is the
// index of partition i's previous owner, -1 when it had none (""), -2 when the
// previous owner is not in in.Members (departed). It also returns how many
// partitions each member owned. With Previous nil every entry is -1.
func previousOwners(in Input) (owner []int32, count []int) {
	owner = make([]int32, len(in.Partitions))
	count = make([]int, len(in.Members))
	if in.Previous == nil {
		for i := range owner {
			owner[i] = -1
		}
		return owner, count
	}
	idx := memberIndex(in.Members)
	lastID, lastIdx := "", int32(-1) // consecutive partitions often share an owner
	for i, id := range in.Previous {
		switch {
		case id == "":
			owner[i] = -1
			continue
		case id == lastID:
			owner[i] = lastIdx
		default:
			m, ok := idx[id]
			if !ok {
				m = -2
			}
			owner[i] = m
			lastID, lastIdx = id, m
		}
		if m := owner[i]; m >= 0 {
			count[m]++
		}
	}
	return owner, count
}
