package liveness

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestProfilesValidate(t *testing.T) {
	for name, p := range map[string]Timings{"Production": Production(), "Fast": Fast(), "Test": Test()} {
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// DESIGN's numbers.
	if p := Production(); p.Heartbeat != 2*s || p.Expiry != 6*s || p.Lease != 3500*ms || p.Margin != 2*s {
		t.Errorf("Production() = %+v", p)
	}
	if p := Fast(); p.Heartbeat != 250*ms || p.Expiry != 1500*ms || p.Lease != 700*ms {
		t.Errorf("Fast() = %+v", p)
	}
	if p := Test(); p.Margin < time.Second {
		t.Errorf("Test() margin %v < 1s", p.Margin)
	}
	if c := Production().JudgeConfig(); c.Expiry != 6*s || c.MaxGap != 3*s {
		t.Errorf("Production().JudgeConfig() = %+v", c)
	}
}

func TestTimingsValidate(t *testing.T) {
	with := func(f func(*Timings)) Timings {
		p := Production()
		f(&p)
		return p
	}
	type v struct {
		field string
		rule  TimingsRule
	}
	pos := func(field string) v { return v{field, TimingsPositive} }
	tests := []struct {
		name string
		t    Timings
		want []v // every violation, in order
	}{
		{"zero heartbeat", with(func(p *Timings) { p.Heartbeat = 0 }), []v{pos("Heartbeat")}},
		{"negative expiry", with(func(p *Timings) { p.Expiry = -time.Second }), []v{pos("Expiry")}},
		{"zero lease", with(func(p *Timings) { p.Lease = 0 }), []v{pos("Lease")}},
		{"zero margin", with(func(p *Timings) { p.Margin = 0 }), []v{pos("Margin")}},
		{"zero ack budget", with(func(p *Timings) { p.AckBudget = 0 }), []v{pos("AckBudget")}},
		{"zero reconnect wait", with(func(p *Timings) { p.ReconnectWait = 0 }), []v{pos("ReconnectWait")}},
		{"all zero: only positivity is reported", Timings{},
			[]v{pos("Heartbeat"), pos("Expiry"), pos("Lease"), pos("Margin"), pos("AckBudget"), pos("ReconnectWait")}},
		{"lease beyond expiry − margin", with(func(p *Timings) { p.Lease = 4*s + 1 }),
			[]v{{"Lease", TimingsLeaseBelowExpiry}}},
		// Issue 12: equality used to validate, and every profile sat there.
		{"lease equal to expiry − margin", with(func(p *Timings) { p.Lease = 4 * s }),
			[]v{{"Lease", TimingsLeaseBelowExpiry}}},
		{"margin too large for the lease", with(func(p *Timings) { p.Margin = 3 * s }),
			[]v{{"Lease", TimingsLeaseBelowExpiry}}},
		{"lease not above heartbeat + ack budget", with(func(p *Timings) { p.AckBudget = 1500 * ms }),
			[]v{{"Lease", TimingsLeaseAboveHeartbeat}}},
		{"reconnect wait + heartbeat at the expiry", with(func(p *Timings) { p.ReconnectWait = 4 * s }),
			[]v{{"ReconnectWait", TimingsReconnectBeforeExpiry}}},
		{"several violations are all reported", with(func(p *Timings) { p.Lease = 5 * s; p.Heartbeat = 4500 * ms }),
			[]v{{"Lease", TimingsLeaseBelowExpiry}, {"Lease", TimingsLeaseAboveHeartbeat}, {"ReconnectWait", TimingsReconnectBeforeExpiry}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.t.Validate()
			if !errors.Is(err, ErrInvalidTimings) {
				t.Fatalf("Validate(%+v) = %v, want ErrInvalidTimings", tc.t, err)
			}
			var got []v
			for _, e := range leaves(err) {
				var te *TimingsError
				if !errors.As(e, &te) {
					t.Fatalf("%v is not a *TimingsError", e)
				}
				// The message is for people: it names the field and
				// starts with the package; tests compare fields and rules.
				if !strings.HasPrefix(te.Error(), "liveness: ") || !strings.Contains(te.Error(), te.Field) {
					t.Errorf("message %q does not name field %s", te.Error(), te.Field)
				}
				got = append(got, v{te.Field, te.Rule})
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("violations %v, want %v (error: %v)", got, tc.want, err)
			}
		})
	}
}

// TestTimingsBoundaries pins each inequality at its boundary, so that a
// strict/non-strict slip is caught.
func TestTimingsBoundaries(t *testing.T) {
	p := Production()
	p.Lease = p.Expiry - p.Margin - 1 // just below Expiry − Margin
	if err := p.Validate(); err != nil {
		t.Fatalf("Lease = Expiry − Margin − 1ns must validate: %v", err)
	}
	p.Lease++
	if err := p.Validate(); !errors.Is(err, ErrInvalidTimings) {
		t.Fatalf("Lease == Expiry − Margin must not validate: %v", err)
	}
	p.Lease--
	p.AckBudget = p.Lease - p.Heartbeat - 1 // Lease just above Heartbeat + AckBudget
	if err := p.Validate(); err != nil {
		t.Fatalf("Lease = Heartbeat + AckBudget + 1ns must validate: %v", err)
	}
	p = Production()
	p.ReconnectWait = p.Expiry - p.Heartbeat - 1
	if err := p.Validate(); err != nil {
		t.Fatalf("ReconnectWait + Heartbeat = Expiry − 1ns must validate: %v", err)
	}
}

// leaves flattens errors.Join trees.
func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}
