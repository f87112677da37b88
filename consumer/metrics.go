package consumer

import (
	"sync/atomic"
	"time"
)

// Metrics receives what an operator needs to watch the helper. Calls come
// from many goroutines: implementations must be safe for concurrent use and
// must not block. Embed NopMetrics to implement only some methods.
type Metrics interface {
	// Processed counts a message handled successfully and settled;
	// took is the handler's time.
	Processed(partition string, took time.Duration)
	// Failed counts a failed attempt; reason is "error", "panic" or
	// "permanent".
	Failed(partition string, reason string)
	// DeadLettered counts a message moved to the dead-letter subject.
	DeadLettered(partition string)
	// InFlight reports the messages being handled (or unsettled in
	// manual-ack mode) now.
	InFlight(n int)
	// Partitions reports the partitions being consumed.
	Partitions(n int)
	// Reconfigured counts a consumer of the member started ("consumer",
	// with the time it took) or replaced because it was deleted or changed
	// from outside ("consumer-deleted", "consumer-changed", pause 0).
	Reconfigured(reason string, pause time.Duration)
	// Error counts a failed operation ("floor-read", "floor-write",
	// "floor-fence", "floor-record", "dead-letter", "consume",
	// "create-consumer", "check-consumer", "drain-timeout", "permission",
	// ...).
	Error(op string, err error)
}

// NopMetrics implements Metrics by doing nothing.
type NopMetrics struct{}

// Processed implements Metrics.
func (NopMetrics) Processed(string, time.Duration) {}

// Failed implements Metrics.
func (NopMetrics) Failed(string, string) {}

// DeadLettered implements Metrics.
func (NopMetrics) DeadLettered(string) {}

// InFlight implements Metrics.
func (NopMetrics) InFlight(int) {}

// Partitions implements Metrics.
func (NopMetrics) Partitions(int) {}

// Reconfigured implements Metrics.
func (NopMetrics) Reconfigured(string, time.Duration) {}

// Error implements Metrics.
func (NopMetrics) Error(string, error) {}

// Stats are the helper's counters since it started.
type Stats struct {
	Processed    uint64 // handled successfully and settled
	Failed       uint64 // failed attempts, panics included
	Panics       uint64 // recovered handler panics
	DeadLettered uint64 // moved to the dead-letter subject
	Reconfigs    uint64 // consumers started
	FloorWrites  uint64 // floor records and progress records written (see the package doc)
	Checks       uint64 // checks of the member's consumers completed (Config.CheckInterval)
	Errors       uint64 // failed operations (see Metrics.Error)
	InFlight     int    // being handled now
	Partitions   int    // being consumed now
}

type counters struct {
	processed, failed, panics, dead, reconfigs, errors, floorWrites, checks atomic.Uint64
}
