package parti

import (
	"strings"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// Constraint places one partition under the "placement" strategy.
type Constraint struct {
	// Require is the hard constraint: only a member whose Labels include
	// every one of these may own the partition. With no such member live,
	// the partition stays unowned (and parti-replay audit says so).
	Require map[string]string
	// Prefer is the soft affinity: among the members allowed, prefer those
	// whose Labels also include these, while any is live and has room
	// within the balance bound (balance wins over affinity).
	Prefer map[string]string
}

// class returns c as the event form.
func (c Constraint) class() events.Class {
	return events.Class{Require: events.LabelsOf(c.Require), Prefer: events.LabelsOf(c.Prefer)}
}

// key identifies the class of c ("" for no constraint).
func classKey(c events.Class) string {
	if len(c.Require) == 0 && len(c.Prefer) == 0 {
		return ""
	}
	return strings.Join(c.Require, ",") + ";" + strings.Join(c.Prefer, ",")
}

// placementClasses deduplicates Constraints into classes, in order of first
// appearance (class 0 is "no constraint" when any partition has none), and
// returns each partition's class. Both are nil without Constraints.
func (c Config) placementClasses() ([]events.Class, []uint32) {
	if c.Constraints == nil {
		return nil, nil
	}
	var classes []events.Class
	index := map[string]uint32{} // lookups only
	classOf := make([]uint32, len(c.Constraints))
	for i, con := range c.Constraints {
		cl := con.class()
		k := classKey(cl)
		j, ok := index[k]
		if !ok {
			j = uint32(len(classes))
			index[k] = j
			classes = append(classes, cl)
		}
		classOf[i] = j
	}
	return classes, classOf
}

func (c Config) classes() []events.Class {
	cl, _ := c.placementClasses()
	return cl
}

func (c Config) classOf() []uint32 {
	_, co := c.placementClasses()
	return co
}

// validatePlacement checks Labels, Capacity and Constraints.
func (c Config) validatePlacement() []error {
	var errs []error
	if err := events.ValidLabels(events.LabelsOf(c.Labels)); err != nil {
		errs = append(errs, fieldErr("Labels", "are invalid: %v", err))
	}
	if c.Capacity > events.MaxCapacity {
		errs = append(errs, fieldErr("Capacity", "(%d) must be at most %d", c.Capacity, events.MaxCapacity))
	}
	if c.Constraints == nil {
		return errs
	}
	if len(c.Constraints) != len(c.Partitions) {
		return append(errs, fieldErr("Constraints", "has %d entries for %d partitions", len(c.Constraints), len(c.Partitions)))
	}
	valid := true
	for i, con := range c.Constraints {
		cl := con.class()
		if err := events.ValidLabels(cl.Require); err != nil {
			errs, valid = append(errs, fieldErr("Constraints", "[%d].Require is invalid: %v", i, err)), false
		}
		if err := events.ValidLabels(cl.Prefer); err != nil {
			errs, valid = append(errs, fieldErr("Constraints", "[%d].Prefer is invalid: %v", i, err)), false
		}
	}
	if !valid {
		return errs
	}
	if classes, _ := c.placementClasses(); len(classes) > events.MaxClasses {
		errs = append(errs, fieldErr("Constraints", "has %d distinct constraints, at most %d", len(classes), events.MaxClasses))
	}
	return errs
}

// SetPlacedPartitions is SetPartitions with constraints (nil or parallel to
// ids; see Config.Constraints): the partition set, and each partition's
// constraint, this member declares when it leads under the "placement"
// strategy. SetPartitions declares a set without constraints.
func (m *Member) SetPlacedPartitions(ids []string, weights []uint32, constraints []Constraint) error {
	c := m.cfg
	c.Partitions, c.Weights, c.Constraints = ids, weights, constraints
	if err := c.Validate(); err != nil {
		return err
	}
	classes, classOf := c.placementClasses()
	m.post(func() {
		m.raw().SetPartitions(ids, weights, "")
		m.raw().SetPlacement(classes, classOf)
	})
	return nil
}

// PlacementMetrics is implemented by a Metrics that also wants the
// placement figures; the member reports them when its Metrics implements
// it.
type PlacementMetrics interface {
	// Unplaceable reports how many declared partitions no eligible member
	// may own (their constraint requires labels none carries).
	Unplaceable(n int)
}

// reportUnplaceable reports s's unplaceable partitions to the member's
// Metrics, if it implements PlacementMetrics. It runs inside the fold's
// View.
func (m *Member) reportUnplaceable(s *decider.State) {
	if pm, ok := m.cfg.Metrics.(PlacementMetrics); ok {
		pm.Unplaceable(len(s.Unplaceable()))
	}
}
