package sim

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/internal/contracttest"
)

func TestScriptRejectsBadInput(t *testing.T) {
	for name, ids := range map[string][]string{
		"none":      nil,
		"empty ID":  {"c-00", ""},
		"duplicate": {"c-00", "c-01", "c-00"},
	} {
		if _, err := NewScript(DefaultOptions(1), ids); !errors.Is(err, ErrScript) {
			t.Errorf("%s: NewScript(%q): %v, want ErrScript", name, ids, err)
		}
	}
	s, err := NewScript(DefaultOptions(1), contracttest.Partitions(4))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Leave("a"); !errors.Is(err, ErrScript) {
		t.Errorf("Leave of an ID no process runs: %v, want ErrScript", err)
	}
	if err := s.Join("a", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Join("a", nil); !errors.Is(err, ErrScript) {
		t.Errorf("a second Join of a running ID: %v, want ErrScript", err)
	}
	if err := s.SetPartitions("a", []string{"c-00", "p-000"}); !errors.Is(err, ErrScript) {
		t.Errorf("SetPartitions outside the script's partitions: %v, want ErrScript", err)
	}
}

// A Settle that cannot end within the script's bound fails: a member closed
// for a restart that never comes keeps its partitions for the grace (5 s),
// beyond a 2 s bound; with the default bound the group settles once the
// grace ended and the other member holds everything.
func TestScriptSettleIsBounded(t *testing.T) {
	r := contracttest.NewRecorder()
	s, err := NewScript(DefaultOptions(1), contracttest.Partitions(6))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if err := s.Join(id, r.Handler(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Settle(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close("a"); err != nil {
		t.Fatal(err)
	}
	s.Limit = 2 * time.Second
	start := s.Now()
	if err := s.Settle(); !errors.Is(err, ErrScript) {
		t.Fatalf("Settle within %v while a closed member waits for its grace: %v, want ErrScript", s.Limit, err)
	}
	if d := s.Now() - start; d < s.Limit {
		t.Fatalf("Settle gave up after %v of simulated time, before its bound %v", d, s.Limit)
	}
	s.Limit = 0 // DefaultScriptLimit
	if err := s.Settle(); err != nil {
		t.Fatal(err)
	}
	if got := r.Held("b"); !slices.Equal(got, contracttest.Partitions(6)) {
		t.Fatalf("b holds %v after a's grace, want every partition", got)
	}
}

// A script keeps the random runs' safety checks: an application that acts
// on a move's target before the source released it is caught by the first
// rebalance, while the real code passes the same script.
func TestScriptKeepsTheChecks(t *testing.T) {
	run := func(broken bool) error {
		opt := DefaultOptions(1)
		opt.Broken.AssignBeforeRelease = broken
		s, err := NewScript(opt, contracttest.Partitions(8))
		if err != nil {
			return err
		}
		for _, id := range []string{"a", "b"} {
			if err := s.Join(id, nil); err != nil {
				return err
			}
			if err := s.Settle(); err != nil {
				return err
			}
		}
		return nil
	}
	if err := run(false); err != nil {
		t.Fatalf("the real code: %v", err)
	}
	var v *Violation
	if err := run(true); !errors.As(err, &v) || !slices.Contains([]Kind{KindOverlap, KindAppOverlap, KindStaleWrite}, v.Kind) {
		t.Fatalf("assign-before-release in a script: %v, want an overlap or a token out of order", err)
	}
	t.Logf("assign-before-release caught: %v", v)
}

// A seed replays a script exactly: the same events at the same times.
func TestScriptReplays(t *testing.T) {
	run := func() ([]string, time.Duration) {
		s, err := NewScript(DefaultOptions(7), contracttest.Partitions(8))
		if err != nil {
			t.Fatal(err)
		}
		h := parti.HandlerFuncs{}
		for _, step := range []func() error{
			func() error { return s.Join("a", h) },
			func() error { return s.Join("b", h) },
			s.Settle,
			func() error { return s.SetPartitions("a", contracttest.Partitions(5)) },
			s.Settle,
			func() error { return s.Leave("b") },
			s.Settle,
		} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		return s.w.traceLines(), s.Now()
	}
	tr1, t1 := run()
	tr2, t2 := run()
	if t1 != t2 || !slices.Equal(tr1, tr2) {
		t.Fatalf("two runs of one script differ: %v and %v\n%v\n%v", t1, t2, tr1, tr2)
	}
}
