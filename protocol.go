package parti

import (
	"context"
	"fmt"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/rawmember"
)

// refuseNewerGroup folds the group's log up to its current end, sets app's
// write version to the group's, and fails
// with ErrNewerProtocol, before anything is appended, when the group's
// protocol version (a valid version-set event on the log) is above what this
// build speaks: a process of an older build joining an upgraded group is
// refused without a claim, a heartbeat or anything else of its own on the
// group's subjects.
func refuseNewerGroup(ctx context.Context, cfg Config, proj *projection.Projection, app *projection.Appender, subj events.Subjects) error {
	// A replicated stream just created may time out or not answer.
	var (
		last  events.Record
		found bool
	)
	err := joinAttempts(ctx, cfg, nil, func(actx context.Context) error {
		var err error
		last, found, err = app.LastOnSubject(actx, subj.Log())
		return err
	})
	if err != nil {
		return fmt.Errorf("parti: join %s: reading the log's end: %w", subj.Group, err)
	}
	if !found {
		return nil
	}
	if err := proj.WaitFor(ctx, last.Seq); err != nil {
		return fmt.Errorf("parti: join %s: folding the log: %w", subj.Group, err)
	}
	st := proj.State()
	if st.NewerVersionAt != 0 {
		return fmt.Errorf("%w: %s's log sets protocol version %d at sequence %d; this build speaks up to %d",
			ErrNewerProtocol, subj.Group, st.Protocol, st.NewerVersionAt, events.MaxVersion)
	}
	// The claim is written at the group's version too.
	app.SetVersion(min(max(st.Protocol, 1), events.MaxVersion))
	return nil
}

// syncWriteVersion makes every envelope this member appends from now on carry
// the group's folded protocol version (DESIGN rule 8): a build that speaks a
// newer version writes at the old one until the leader raised the group's.
func (m *Member) syncWriteVersion() {
	if m.raw().Stopped() != rawmember.NotStopped {
		return
	}
	if v := m.raw().WriteVersion(); v != m.app.Version() {
		m.log.Info("writing at the group's protocol version", "version", v)
		m.app.SetVersion(v)
	}
}
