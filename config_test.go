package parti

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/parti-io/parti/liveness"
)

func TestConfigValidateNamesTheField(t *testing.T) {
	ok := Production("orders")
	if err := ok.Validate(); err != nil {
		t.Fatalf("production profile: %v", err)
	}
	if err := Fast("orders").Validate(); err != nil {
		t.Fatalf("fast profile: %v", err)
	}
	cases := []struct {
		field  string
		mutate func(*Config)
	}{
		{"Group", func(c *Config) { c.Group = "" }},
		{"Group", func(c *Config) { c.Group = "a.b" }},
		{"ID", func(c *Config) { c.ID = "has space" }},
		{"Timings", func(c *Config) { c.Timings.Lease = c.Timings.Expiry }},
		{"Timings", func(c *Config) { c.Timings.ReconnectWait = c.Timings.Expiry }},
		{"Weights", func(c *Config) { c.Partitions = []string{"a", "b"}; c.Weights = []uint32{1} }},
		{"Weights", func(c *Config) { c.Partitions = []string{"a"}; c.Weights = []uint32{0} }},
		{"Partitions", func(c *Config) { c.Partitions = []string{"a", "a"} }},
		{"Partitions", func(c *Config) { c.Partitions = []string{""} }},
		{"Strategy", func(c *Config) { c.Strategy = "fastest" }},
		{"Window", func(c *Config) { c.Window = -time.Second }},
		{"Grace", func(c *Config) { c.Grace = -time.Second }},
		{"ExpectedMembers", func(c *Config) { c.ExpectedMembers = -1 }},
		{"Replicas", func(c *Config) { c.Replicas = 7 }},
		{"HeartbeatTTL", func(c *Config) { c.HeartbeatTTL = 500 * time.Millisecond }},
		{"HeartbeatTTL", func(c *Config) { c.HeartbeatTTL = 7 * time.Second }},
		{"SnapshotTTL", func(c *Config) { c.SnapshotTTL = time.Millisecond }},
	}
	for _, tc := range cases {
		c := Production("orders")
		tc.mutate(&c)
		err := c.Validate()
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", tc.field, err)
			continue
		}
		if got := violatedFields(err); !slices.Equal(got, []string{tc.field}) {
			t.Errorf("%s: error %v names the fields %v", tc.field, err, got)
		}
	}
	c := Production("orders")
	c.Timings.Lease = c.Timings.Expiry
	if err := c.Validate(); !errors.Is(err, liveness.ErrInvalidTimings) {
		t.Errorf("timings error %v does not wrap liveness.ErrInvalidTimings", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Group: "g"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.setDefaults()
	if c.Timings != liveness.Production() || c.Strategy != "sticky" || c.Replicas != 1 || c.Grace != 30*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
}

// violatedFields returns the fields of every *ConfigError in err (a single
// one or an errors.Join of several), in order.
func violatedFields(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		var ce *ConfigError
		if c, ok := e.(*ConfigError); ok {
			out = append(out, c.Field)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if errors.As(e, &ce) {
			out = append(out, ce.Field)
		}
	}
	walk(err)
	return out
}

// Validate reports every violation, not only the first, each naming its
// field.
func TestConfigValidateReportsEveryViolation(t *testing.T) {
	c := Production("")
	c.Window = -time.Second
	c.Replicas = 9
	c.Partitions = []string{"a", "a", ""}
	c.Timings.Lease = c.Timings.Expiry
	err := c.Validate()
	want := []string{"Group", "Timings", "Partitions", "Partitions", "Window", "Replicas"}
	if got := violatedFields(err); !slices.Equal(got, want) {
		t.Fatalf("fields %v, want %v (error: %v)", got, want, err)
	}
	if !errors.Is(err, ErrInvalidConfig) || !errors.Is(err, liveness.ErrInvalidTimings) {
		t.Fatalf("%v does not wrap ErrInvalidConfig and liveness.ErrInvalidTimings", err)
	}
}
