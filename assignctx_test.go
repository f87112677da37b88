package parti

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// An assignment's Context behaves as context.WithCancel(lease) would,
// whichever of revocation, the end of the lease and the first look at it
// comes first.
func TestAssignmentContextEndsLikeACancellableChild(t *testing.T) {
	errLapsed := errors.New("lease lapsed")
	cases := []struct {
		name      string
		doneFirst bool // Done is asked for before the end
		revoke    bool // the end is a revocation (else the lease ends)
		wantErr   error
		wantCause error
	}{
		{"revoked, never looked at", false, true, context.Canceled, context.Canceled},
		{"revoked, watched", true, true, context.Canceled, context.Canceled},
		{"lease ended, never looked at", false, false, context.Canceled, errLapsed},
		{"lease ended, watched", true, false, context.Canceled, errLapsed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lease, end := context.WithCancelCause(context.Background())
			defer end(nil)
			c := &assignmentContext{lease: lease}
			if err := c.Err(); err != nil {
				t.Fatalf("Err before the end = %v", err)
			}
			var derived context.Context
			if tc.doneFirst {
				if closed(c.Done()) {
					t.Fatal("Done closed before the end")
				}
				var stop context.CancelFunc
				derived, stop = context.WithTimeout(c, time.Hour)
				defer stop()
			}
			if tc.revoke {
				c.cancel()
			} else {
				end(errLapsed)
			}
			if err := c.Err(); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Err = %v, want %v", err, tc.wantErr)
			}
			if !closed(c.Done()) {
				t.Fatal("Done not closed after the end")
			}
			if err := context.Cause(c); !errors.Is(err, tc.wantCause) {
				t.Fatalf("Cause = %v, want %v", err, tc.wantCause)
			}
			if derived != nil && !closed(derived.Done()) {
				t.Fatal("a context derived from it did not end with it")
			}
		})
	}
}

// A revocation does not end the lease, nor another assignment's context.
func TestAssignmentContextRevocationIsItsOwn(t *testing.T) {
	lease, end := context.WithCancel(context.Background())
	defer end()
	a, b := &assignmentContext{lease: lease}, &assignmentContext{lease: lease}
	_ = b.Done()
	a.cancel()
	if lease.Err() != nil || b.Err() != nil || closed(b.Done()) {
		t.Fatalf("revoking one ended more: lease %v, other %v", lease.Err(), b.Err())
	}
	if d, ok := a.Deadline(); ok {
		t.Fatalf("Deadline = %v, true; the lease has none", d)
	}
}

// Looked at, revoked and ended from several goroutines at once (run with
// -race): it ends once, and every look agrees.
func TestAssignmentContextConcurrentUse(t *testing.T) {
	for range 200 {
		lease, end := context.WithCancel(context.Background())
		c := &assignmentContext{lease: lease}
		var wg sync.WaitGroup
		wg.Add(4)
		go func() { defer wg.Done(); <-c.Done() }()
		go func() { defer wg.Done(); _ = c.Err() }()
		go func() { defer wg.Done(); c.cancel() }()
		go func() { defer wg.Done(); _ = c.Value("k"); end() }()
		wg.Wait()
		if c.Err() == nil || !closed(c.Done()) {
			t.Fatalf("not ended: Err %v", c.Err())
		}
	}
}
