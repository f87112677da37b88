package decider

import "time"

// fixedTime gives records a server timestamp that the fold must never read.
func fixedTime(seq uint64) time.Time {
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Millisecond)
}
