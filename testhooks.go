package parti

import (
	"time"

	"github.com/parti-io/parti/internal/testhooks"
)

func init() {
	testhooks.LeaseDeadline = func(m any) time.Duration { return m.(*Member).leaseDeadline() }
	testhooks.LiveContexts = func(m any) (int, int) { return m.(*Member).liveContexts() }
}
