package clock

import (
	"sync"
	"testing"
	"time"
)

func TestBootNonDecreasing(t *testing.T) {
	c := Boot()
	prev := c.Now()
	for range 100_000 {
		now := c.Now()
		if now < prev {
			t.Fatalf("Boot went backwards: %v after %v", now, prev)
		}
		prev = now
	}
}

// TestBootAdvances checks, without sleeping, that the boot clock advances at
// least as fast as Go's monotonic clock: the boot readings bracket the
// monotonic ones, and the boot clock also counts any suspend in between.
func TestBootAdvances(t *testing.T) {
	c := Boot()
	b1 := c.Now()
	m1 := time.Now()
	for time.Since(m1) < 2*time.Millisecond {
	}
	m := time.Since(m1)
	b := c.Now() - b1
	if b < m-10*time.Microsecond {
		t.Fatalf("boot clock advanced %v while the monotonic clock advanced %v", b, m)
	}
}

func TestFake(t *testing.T) {
	tests := []struct {
		rate    float64
		advance []time.Duration
		want    time.Duration
	}{
		{1, []time.Duration{time.Second, 500 * time.Millisecond}, 1500 * time.Millisecond},
		{1.01, []time.Duration{time.Second}, 1010 * time.Millisecond},
		{0.99, []time.Duration{time.Second}, 990 * time.Millisecond},
		{2, []time.Duration{time.Second, time.Second}, 4 * time.Second},
		{1.01, repeat(time.Millisecond, 1000), 1010 * time.Millisecond}, // no accumulated rounding
	}
	for _, tc := range tests {
		f := NewFake(tc.rate)
		if f.Now() != 0 || f.Rate() != tc.rate {
			t.Fatalf("new fake: Now %v Rate %v", f.Now(), f.Rate())
		}
		prev := f.Now()
		for _, d := range tc.advance {
			f.Advance(d)
			if f.Now() < prev {
				t.Fatalf("rate %v: reading went backwards", tc.rate)
			}
			prev = f.Now()
		}
		if got := f.Now(); absDiff(got, tc.want) > time.Microsecond {
			t.Errorf("rate %v: Now() = %v, want %v", tc.rate, got, tc.want)
		}
	}
}

func TestFakeConcurrent(t *testing.T) {
	f := NewFake(1.5)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 1000 {
				f.Advance(time.Millisecond)
			}
		}()
		go func() {
			defer wg.Done()
			prev := f.Now()
			for range 1000 {
				now := f.Now()
				if now < prev {
					t.Errorf("reading went backwards: %v after %v", now, prev)
					return
				}
				prev = now
			}
		}()
	}
	wg.Wait()
	if got, want := f.Now(), 12*time.Second; got != want {
		t.Fatalf("Now() = %v, want %v", got, want)
	}
}

func TestFakePanics(t *testing.T) {
	for name, fn := range map[string]func(){
		"zero rate":        func() { NewFake(0) },
		"negative rate":    func() { NewFake(-1) },
		"infinite rate":    func() { NewFake(float64Inf()) },
		"negative advance": func() { NewFake(1).Advance(-1) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			fn()
		})
	}
}

func TestClockInterface(t *testing.T) {
	var _ Clock = Boot()
	var _ Clock = NewFake(1)
	var _ Clock = newMonotonic()
	m := newMonotonic()
	if m.Now() < 0 {
		t.Fatal("monotonic reading < 0")
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func absDiff(a, b time.Duration) time.Duration {
	if a > b {
		return a - b
	}
	return b - a
}

func float64Inf() float64 {
	var zero float64
	return 1 / zero
}
