// Package clock provides the clocks parti measures liveness with.
//
// A [Clock] returns readings as a [time.Duration] from an unspecified zero:
// only differences between readings of the same clock in the same process
// mean anything. Leases and judges (package liveness) work on such readings,
// never on wall-clock time, never across processes.
//
// [Boot] is the production clock. On Linux it reads CLOCK_BOOTTIME, which
// keeps counting while the machine is suspended: a member whose laptop or VM
// was suspended finds its lease expired when it wakes, instead of acting on a
// lease that its judge has long since outlived (DESIGN rule 4). Elsewhere it
// falls back to Go's monotonic clock, which on some systems stops during
// suspend; that case is documented, not hidden.
//
// [Fake] is for tests and simulators: it advances only when told, at a chosen
// rate, to model fast, slow and suspended clocks.
package clock

import (
	"math"
	"sync"
	"time"
)

// Clock is a source of readings that never decrease.
type Clock interface {
	// Now returns the current reading. Readings from one Clock never
	// decrease; their zero point is unspecified.
	Now() time.Duration
}

// monotonic reads Go's monotonic clock, relative to when it was created.
type monotonic struct{ start time.Time }

func newMonotonic() monotonic { return monotonic{start: time.Now()} }

// Now returns the monotonic time elapsed since the clock was created.
func (m monotonic) Now() time.Duration { return time.Since(m.start) }

// Fake is a clock that advances only through [Fake.Advance], reading rate
// times the real time advanced: rate 1.01 models a clock running 1 % fast,
// 0.99 one running 1 % slow. It starts at reading 0 and is safe for concurrent
// use.
type Fake struct {
	mu   sync.Mutex
	rate float64
	real time.Duration // total real time advanced
}

// NewFake returns a fake clock at reading 0 that advances rate times as fast
// as the real time given to [Fake.Advance]. It panics unless rate is finite
// and > 0.
func NewFake(rate float64) *Fake {
	if !(rate > 0) || math.IsInf(rate, 0) {
		panic("clock: NewFake: rate must be finite and > 0")
	}
	return &Fake{rate: rate}
}

// Advance moves real time forward by d (suspend included: a boot clock counts
// through it); the reading advances by about d × rate. It panics if d < 0.
func (f *Fake) Advance(d time.Duration) {
	if d < 0 {
		panic("clock: Fake.Advance: negative duration")
	}
	f.mu.Lock()
	f.real += d
	f.mu.Unlock()
}

// Now returns the reading: the total real time advanced times the rate,
// rounded down to the nanosecond. Readings never decrease.
func (f *Fake) Now() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rate == 1 {
		return f.real
	}
	return time.Duration(float64(f.real) * f.rate)
}

// Rate returns the rate given to [NewFake].
func (f *Fake) Rate() float64 { return f.rate }
