package liveness

import (
	"errors"
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
	if c := Production().JudgeConfig(); c.Expiry != 6*s || c.MaxGap != 3*s || c.Rule != RuleNoGap {
		t.Errorf("Production().JudgeConfig() = %+v", c)
	}
}

func TestTimingsValidate(t *testing.T) {
	with := func(f func(*Timings)) Timings {
		p := Production()
		f(&p)
		return p
	}
	tests := []struct {
		name   string
		t      Timings
		fields []string // every field named, in order
		text   []string // substrings of the message
	}{
		{"zero heartbeat", with(func(p *Timings) { p.Heartbeat = 0 }), []string{"Heartbeat"}, []string{"Heartbeat (0s) must be > 0"}},
		{"negative expiry", with(func(p *Timings) { p.Expiry = -time.Second }), []string{"Expiry"}, []string{"Expiry (-1s) must be > 0"}},
		{"zero lease", with(func(p *Timings) { p.Lease = 0 }), []string{"Lease"}, []string{"Lease (0s) must be > 0"}},
		{"zero margin", with(func(p *Timings) { p.Margin = 0 }), []string{"Margin"}, []string{"Margin (0s) must be > 0"}},
		{"zero ack budget", with(func(p *Timings) { p.AckBudget = 0 }), []string{"AckBudget"}, []string{"AckBudget (0s) must be > 0"}},
		{"zero reconnect wait", with(func(p *Timings) { p.ReconnectWait = 0 }), []string{"ReconnectWait"}, []string{"ReconnectWait (0s) must be > 0"}},
		{"all zero: only positivity is reported", Timings{},
			[]string{"Heartbeat", "Expiry", "Lease", "Margin", "AckBudget", "ReconnectWait"}, nil},
		{"lease beyond expiry − margin", with(func(p *Timings) { p.Lease = 4*s + 1 }),
			[]string{"Lease"}, []string{"liveness: Lease (4.000000001s) must be < Expiry − Margin (4s)"}},
		// Issue 12: equality used to validate, and every profile sat there.
		{"lease equal to expiry − margin", with(func(p *Timings) { p.Lease = 4 * s }),
			[]string{"Lease"}, []string{"liveness: Lease (4s) must be < Expiry − Margin (4s)"}},
		{"margin too large for the lease", with(func(p *Timings) { p.Margin = 3 * s }),
			[]string{"Lease"}, []string{"Lease (3.5s) must be < Expiry − Margin (3s)"}},
		{"lease not above heartbeat + ack budget", with(func(p *Timings) { p.AckBudget = 1500 * ms }),
			[]string{"Lease"}, []string{"liveness: Lease (3.5s) must be > Heartbeat + AckBudget (3.5s)"}},
		{"reconnect wait + heartbeat at the expiry", with(func(p *Timings) { p.ReconnectWait = 4 * s }),
			[]string{"ReconnectWait"}, []string{"liveness: ReconnectWait + Heartbeat (6s) must be < Expiry (6s)"}},
		{"several violations are all reported", with(func(p *Timings) { p.Lease = 5 * s; p.Heartbeat = 4500 * ms }),
			[]string{"Lease", "Lease", "ReconnectWait"}, []string{"< Expiry − Margin", "> Heartbeat + AckBudget", "< Expiry ("}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.t.Validate()
			if !errors.Is(err, ErrInvalidTimings) {
				t.Fatalf("Validate(%+v) = %v, want ErrInvalidTimings", tc.t, err)
			}
			var got []string
			for _, e := range leaves(err) {
				var te *TimingsError
				if !errors.As(e, &te) {
					t.Fatalf("%v is not a *TimingsError", e)
				}
				if !strings.Contains(te.Error(), te.Field) {
					t.Errorf("message %q does not name field %s", te.Error(), te.Field)
				}
				got = append(got, te.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Fatalf("fields %v, want %v (error: %v)", got, tc.fields, err)
			}
			for _, sub := range tc.text {
				if !strings.Contains(err.Error(), sub) {
					t.Errorf("error %q does not contain %q", err, sub)
				}
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

func TestJudgeRuleString(t *testing.T) {
	if RuleNoGap.String() != "no-gap" || !strings.Contains(RuleIgnoreOwnGaps.String(), "broken") || JudgeRule(7).String() != "JudgeRule(7)" {
		t.Fatal(RuleNoGap, RuleIgnoreOwnGaps, JudgeRule(7))
	}
}
