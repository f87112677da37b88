package test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/internal/natstest"
)

// TestJoinSaysTheStreamDoesNotAnswerWrites: a process that can read the
// group's stream but whose writes are never acknowledged (here: no publish
// permission on the group's subjects; on the day, a full disk) must not be
// told "claim not granted" as if the group refused it.
func TestJoinSaysTheStreamDoesNotAnswerWrites(t *testing.T) {
	opts := natstest.Options(t.TempDir())
	opts.Users = []*server.User{
		{Username: "member", Password: "m", Permissions: memberPermissions("nowrites")},
		{Username: "reader", Password: "r", Permissions: replayPermissions("nowrites")},
	}
	s := natstest.Start(t, opts)
	_, mjs := natstest.Connect(t, s.ClientURL(), nats.UserInfo("member", "m"))
	_, rjs := natstest.Connect(t, s.ClientURL(), nats.UserInfo("reader", "r"))
	cfg := parti.Config{Group: "nowrites", Partitions: partitions(4), Timings: testTimings(), Window: 100 * time.Millisecond, ExpectedMembers: 1}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := parti.Join(ctx, mjs, cfg) // creates the stream
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()

	jctx, jcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer jcancel()
	_, err = parti.Join(jctx, rjs, cfg)
	if !errors.Is(err, parti.ErrNotGranted) || !errors.Is(err, parti.ErrNoWrites) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("join without write access: %v; want ErrNotGranted wrapping ErrNoWrites and the deadline", err)
	}
	t.Logf("the error reads: %v", err)
}
