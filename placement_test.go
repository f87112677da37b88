package parti

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

func TestConfigPlacementValidation(t *testing.T) {
	base := func() Config {
		c := Production("g")
		c.Partitions = []string{"p1", "p2", "p3"}
		c.Strategy = "placement"
		c.Labels = map[string]string{"zone": "a", "region": "eu"}
		c.Capacity = 2
		c.Constraints = []Constraint{{}, {Require: map[string]string{"region": "eu"}}, {Prefer: map[string]string{"zone": "a"}}}
		return c
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		fields []string // every field named, in order
	}{
		{"label key", func(c *Config) { c.Labels["bad key"] = "x" }, []string{"Labels"}},
		{"label value", func(c *Config) { c.Labels["zone"] = "a/b" }, []string{"Labels"}},
		{"capacity", func(c *Config) { c.Capacity = events.MaxCapacity + 1 }, []string{"Capacity"}},
		{"constraints length", func(c *Config) { c.Constraints = c.Constraints[:2] }, []string{"Constraints"}},
		{"require", func(c *Config) { c.Constraints[1].Require[""] = "x" }, []string{"Constraints"}},
		{"prefer", func(c *Config) { c.Constraints[2].Prefer["zone"] = "a b" }, []string{"Constraints"}},
		// Every violation is reported, placement or not: the placement
		// checks used to return the first of theirs alone.
		{"all of them", func(c *Config) {
			c.Replicas = 9
			c.Labels["zone"] = "a/b"
			c.Capacity = events.MaxCapacity + 1
			c.Constraints[1].Require[""] = "x"
			c.Constraints[2].Prefer["zone"] = "a b"
		}, []string{"Labels", "Capacity", "Constraints", "Constraints", "Replicas"}},
	} {
		c := base()
		tc.mutate(&c)
		err := c.Validate()
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate() = %v, want ErrInvalidConfig", tc.name, err)
			continue
		}
		if got := violatedFields(err); !slices.Equal(got, tc.fields) {
			t.Errorf("%s: Validate() = %v, names the fields %v, want %v", tc.name, err, got, tc.fields)
		}
	}
}

func TestConfigPlacementClasses(t *testing.T) {
	c := Config{
		Partitions: []string{"p1", "p2", "p3", "p4"},
		Constraints: []Constraint{
			{Require: map[string]string{"region": "eu"}},
			{},
			{Require: map[string]string{"region": "eu"}},
			{Prefer: map[string]string{"zone": "a"}},
		},
	}
	classes, classOf := c.placementClasses()
	want := []events.Class{{Require: []string{"region=eu"}}, {}, {Prefer: []string{"zone=a"}}}
	if len(classes) != 3 || !slices.Equal(classOf, []uint32{0, 1, 0, 2}) {
		t.Fatalf("classes %+v classOf %v", classes, classOf)
	}
	for i := range want {
		if !slices.Equal(classes[i].Require, want[i].Require) || !slices.Equal(classes[i].Prefer, want[i].Prefer) {
			t.Errorf("class %d = %+v, want %+v", i, classes[i], want[i])
		}
	}
	if cl, co := (Config{}).placementClasses(); cl != nil || co != nil {
		t.Errorf("no constraints: %v %v, want nil", cl, co)
	}
}

type unplaceableMetrics struct {
	NopMetrics
	n int
}

func (u *unplaceableMetrics) Unplaceable(n int) { u.n = n }

// TestUnplaceableMetric: a Metrics implementing PlacementMetrics hears how
// many partitions no eligible member may own.
func TestUnplaceableMetric(t *testing.T) {
	s := decider.New()
	seq := uint64(0)
	apply := func(ev events.Event) {
		t.Helper()
		seq++
		r := events.NewRecord(seq, time.Time{}, "parti.g.log", nil, events.MustEncode(events.MaxVersion, ev))
		if out := decider.Apply(s, r); out.Kind != decider.Applied {
			t.Fatalf("%T: %v %s", ev, out.Kind, out.Reason)
		}
	}
	apply(&events.MemberClaimed{ID: "a", Nonce: "n", MaxProtocol: 1, Labels: []string{"region=eu"}})
	ds, err := decider.DeclarePlaced(s, "a", 1, []string{"p1", "p2", "p3"}, nil,
		[]events.Class{{}, {Require: []string{"region=ap"}}}, []uint32{0, 1, 1}, "placement", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		apply(d)
	}
	um := &unplaceableMetrics{n: -1}
	(&Member{cfg: Config{Metrics: um}}).reportUnplaceable(s)
	if um.n != 2 {
		t.Fatalf("Unplaceable reported %d, want 2", um.n)
	}
}
