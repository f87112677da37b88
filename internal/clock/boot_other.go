//go:build !linux

package clock

// Boot returns the clock leases and judges use. On this system it is Go's
// monotonic clock (readings: time since Boot was called), which on some
// systems (for example macOS) does not advance while the machine is
// suspended: a lease can then outlive its judge's expiry across a suspend.
// Only Linux reads CLOCK_BOOTTIME; run production members on Linux.
func Boot() Clock { return newMonotonic() }
