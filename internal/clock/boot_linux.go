//go:build linux

package clock

import (
	"time"

	"golang.org/x/sys/unix"
)

// Boot returns the clock leases and judges use. On Linux it reads
// CLOCK_BOOTTIME, which counts through suspend; its readings are the time
// since boot. On a kernel without CLOCK_BOOTTIME (older than 2.6.39) it falls
// back to Go's monotonic clock, which does not count suspend.
func Boot() Clock {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return newMonotonic()
	}
	return bootTime{}
}

// bootTime reads CLOCK_BOOTTIME.
type bootTime struct{}

// Now returns CLOCK_BOOTTIME. The clock was probed in Boot, so an error here
// cannot happen; should it, Now panics rather than return a reading that
// could go backwards.
func (bootTime) Now() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		panic("clock: CLOCK_BOOTTIME: " + err.Error())
	}
	return time.Duration(ts.Nano())
}
