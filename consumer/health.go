package consumer

import (
	"fmt"

	"github.com/parti-io/parti"
)

// Live reports whether the helper runs: nil while neither it nor its
// member has stopped and the member is live (see parti.Member.Live);
// otherwise an error wrapping parti.ErrNotLive that says why. A stopped
// helper (after Leave, Close, Stop or a fatal error) is not live.
// Consumer satisfies parti.HealthChecker, so parti.HealthHandler serves it.
func (c *Consumer) Live() error {
	select {
	case <-c.e.done:
		err := c.Err()
		if err == nil {
			err = parti.ErrStopped
		}
		return fmt.Errorf("%w: the consumer helper stopped: %w", parti.ErrNotLive, err)
	default:
	}
	return c.m.Live()
}

// Ready reports whether the helper can consume: nil when it is live and
// its member is ready (see parti.Member.Ready); otherwise an error
// wrapping parti.ErrNotReady that says why.
func (c *Consumer) Ready() error {
	if err := c.Live(); err != nil {
		return fmt.Errorf("%w: %w", parti.ErrNotReady, err)
	}
	return c.m.Ready()
}
