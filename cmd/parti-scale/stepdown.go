package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/projection"
)

var errStepdown = errors.New("stream leader step-down")

// streamLeaderChange asks the group's R3 stream's leader to step down in the
// steady state, waits for a new leader, then for three expiries, and
// reports the time to the new leader, the members expired meanwhile (must
// be 0: no member was crashed or closed), the removals the log recorded,
// the members' lease lapses and the revocations they caused, the heartbeats
// that failed (refused or unanswered during the election), the verdicts
// appended, and whether the group settled after.
func (d *driver) streamLeaderChange(ctx context.Context, prefix string, f *bigFleet, expiry time.Duration) error {
	p := prefix + "_stream_leader_change"
	st0, err := f.status(ctx, 0, false)
	if err != nil {
		return err
	}
	seq0, err := lastLogSeq(ctx, d.js, f.group)
	if err != nil {
		return err
	}
	c0, err := f.counts(ctx)
	if err != nil {
		return err
	}
	name := projection.StreamName(f.group)
	old, oldSince, err := d.streamLeadership(ctx, name)
	if err != nil {
		return fmt.Errorf("%w: before it: %w", errStepdown, err)
	}
	t0 := time.Now()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	msg, err := d.js.Conn().RequestWithContext(rctx, "$JS.API.STREAM.LEADER.STEPDOWN."+name, nil)
	cancel()
	if err != nil {
		return fmt.Errorf("%w: request: %w", errStepdown, err)
	}
	var resp struct {
		Success bool                `json:"success"`
		Error   *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("%w: reply %q: %w", errStepdown, msg.Data, err)
	}
	if !resp.Success {
		return fmt.Errorf("%w: refused: %v", errStepdown, resp.Error)
	}
	// A new leadership: another server, or the same one elected again (the
	// step-down does not forbid that: under load the old leader can win
	// the election it caused), told apart by when it was elected. Another
	// server is seen at once (asked of the servers in this process); the
	// same one again only through the stream's info, asked every quarter
	// second.
	var asked time.Time
	for {
		if l := d.cl.streamLeader(name); l != "" && l != old {
			break
		}
		if time.Since(asked) >= 250*time.Millisecond {
			asked = time.Now()
			if leader, since, err := d.streamLeadership(ctx, name); err == nil && (leader != old || since.After(oldSince)) {
				break
			}
		}
		if err := pause(ctx, 5*time.Millisecond); err != nil {
			return fmt.Errorf("%w: no new leader (was %s since %s): %w", errStepdown, old, oldSince.Format(time.RFC3339Nano), err)
		}
	}
	d.fig(p+"_new_leader_ms", ms(time.Since(t0)), "ms")
	// Three expiries from the step-down: a member the change kept from
	// heartbeating would have been expired by then.
	if err := pause(ctx, time.Until(t0.Add(3*expiry))); err != nil {
		return err
	}
	st1, err := f.status(ctx, 0, false)
	if err != nil {
		return err
	}
	c1, err := f.counts(ctx)
	if err != nil {
		return err
	}
	ls, err := readLog(ctx, d.js, f.group, seq0, 0)
	if err != nil {
		return err
	}
	d.fig(p+"_members_expired", float64(st1.expired-st0.expired), "members")
	d.fig(p+"_removals_logged", float64(ls.removals), "removals")
	d.fig(p+"_lease_lost_revocations", float64(st1.leaseLost-st0.leaseLost), "revocations")
	d.fig(p+"_leases_lost", float64(c1.leasesLost-c0.leasesLost), "lapses")
	d.fig(p+"_heartbeats_failed", float64(c1.hbFailed-c0.hbFailed), "heartbeats")
	d.fig(p+"_verdicts", float64(c1.verdicts-c0.verdicts), "verdicts")
	d.fig(p+"_log_records", float64(ls.records), "records")
	// Settled: every partition acted on and the leader's fold shows the
	// group settled with every member (within the step's deadline).
	settled := 1.0
	serr := f.waitSettled(ctx, len(f.where))
	if serr != nil {
		settled = 0
	}
	d.fig(p+"_settled_after", settled, "bool")
	return serr
}

// streamLeadership returns the stream's leader and when it was elected, as
// the stream's info says (an error while it has none, or does not answer).
func (d *driver) streamLeadership(ctx context.Context, stream string) (string, time.Time, error) {
	ictx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := d.js.Stream(ictx, stream)
	if err != nil {
		return "", time.Time{}, err
	}
	info := st.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" || info.Cluster.LeaderSince == nil {
		return "", time.Time{}, errors.New("no leader")
	}
	return info.Cluster.Leader, *info.Cluster.LeaderSince, nil
}
