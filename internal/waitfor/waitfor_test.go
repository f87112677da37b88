package waitfor_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/parti-io/parti/internal/waitfor"
)

// Until returns once the condition holds, having polled it until then.
func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	waitfor.Until(t, 5*time.Second, "the third poll", func() bool { return n.Add(1) >= 3 })
	if got := n.Load(); got != 3 {
		t.Fatalf("polled %d times, want 3", got)
	}
}

type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper()           {}
func (r *recorder) Fatal(args ...any) { r.failed = args[0].(string); panic(r) }

// Past the deadline, Until fails the test with what it waited for.
func TestUntilFailsAtTheDeadline(t *testing.T) {
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != r {
				t.Fatalf("Until did not fail the test (recovered %v)", p)
			}
		}()
		waitfor.Until(r, 30*time.Millisecond, "nothing", func() bool { return false })
	}()
	if want := "timed out after 30ms waiting for nothing"; r.failed != want {
		t.Fatalf("failed with %q, want %q", r.failed, want)
	}
}
