package test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/internal/natstest"
)

// TestCleanLeaveAndCloseWarnNothing: a clean Leave or Close is not an
// incident. An operator once saw "WARN append failed type=partitions-released
// err=context canceled" after a Leave whose release had landed.
func TestCleanLeaveAndCloseWarnNothing(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	for _, how := range []string{"leave", "close"} {
		t.Run(how, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			logs := &logRecorder{}
			cfgs := []parti.Config{}
			for _, id := range []string{"a", "b"} {
				cfgs = append(cfgs, parti.Config{Group: "quiet-" + how, ID: id, Partitions: partitions(200), Timings: testTimings(),
					Window: 100 * time.Millisecond, ExpectedMembers: 2, Logger: slog.New(logs)})
			}
			var ms []*parti.Member
			for _, c := range cfgs {
				m, err := parti.Join(ctx, js, c)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Stop()
				ms = append(ms, m)
			}
			for _, m := range ms {
				if err := m.WaitStable(ctx); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			if how == "leave" {
				err = ms[0].Leave(ctx)
			} else {
				err = ms[0].Close(ctx)
			}
			if err != nil {
				t.Fatalf("%s: %v", how, err)
			}
			if err := ms[1].Leave(ctx); err != nil {
				t.Fatalf("leave b: %v", err)
			}
			logs.mu.Lock()
			defer logs.mu.Unlock()
			for _, r := range logs.recs {
				if r.Level >= slog.LevelWarn {
					t.Errorf("a clean %s logged %s %q", how, r.Level, r.Message)
				}
			}
		})
	}
}
