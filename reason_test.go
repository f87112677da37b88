package parti

import (
	"testing"

	"github.com/parti-io/parti/rawmember"
)

// The contract's reasons are handed to the Handler by conversion: their
// values must match.
func TestRevokeReasonsMatchTheContract(t *testing.T) {
	for _, c := range []struct {
		r   RevokeReason
		raw rawmember.Reason
	}{
		{RevokeMoved, rawmember.ReasonMoved},
		{RevokeLeaseLost, rawmember.ReasonLeaseLost},
		{RevokeStopped, rawmember.ReasonStopped},
		{RevokeDropped, rawmember.ReasonDropped},
	} {
		if RevokeReason(c.raw) != c.r || c.r.String() != c.raw.String() {
			t.Errorf("%v: the contract's %v (%d) converts to %v", c.r, c.raw, c.raw, RevokeReason(c.raw))
		}
	}
}
