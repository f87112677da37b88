// Package waitfor is the module's tests' one way to wait for a condition:
// poll it on a ticker until it holds, or fail the test at a deadline. No
// test should sleep to synchronise.
package waitfor

import (
	"testing"
	"time"
)

// Every is how often Until polls.
const Every = 20 * time.Millisecond

// Until polls cond every Every until it holds; past timeout it fails t
// with what it was waiting for.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	UntilOr(t, timeout, cond, func() string { return "timed out after " + timeout.String() + " waiting for " + what })
}

// UntilOr is Until with the failure message made at the deadline (so it
// can say what the state was).
func UntilOr(t testing.TB, timeout time.Duration, cond func() bool, why func() string) {
	t.Helper()
	Poll(t, timeout, Every, cond, why)
}

// Poll is UntilOr polling every every: for a condition costly to check.
func Poll(t testing.TB, timeout, every time.Duration, cond func() bool, why func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(why())
		}
		<-tick.C
	}
}
