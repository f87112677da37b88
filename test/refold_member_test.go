package test

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/natstest"
)

// TestRefoldKeepsTheMember is issue 11 item 6. The last record a running
// member folded disappears from the stream (the log went backwards, as a
// single-server store can after a host crash); when its tail reconnects, the
// projection notices and refolds from sequence 1. The member must go on
// seeing its old state until the refolded one has caught up: no step may
// see a state without the member. Before the fix the refold reset the state
// to empty, a step saw the member missing and stopped it, and it rejoined
// as a new incarnation once the old one expired: every partition moved.
func TestRefoldKeepsTheMember(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := natstest.Options(t.TempDir())
	opts.Port = natstest.FreePort(t)
	s := natstest.Start(t, opts)
	_, js := natstest.Connect(t, s.ClientURL())
	restart := func(restore string) {
		t.Helper()
		s.Shutdown()
		s.WaitForShutdown()
		if restore != "" {
			if err := os.RemoveAll(opts.StoreDir); err != nil {
				t.Fatal(err)
			}
			if err := os.CopyFS(opts.StoreDir, os.DirFS(restore)); err != nil {
				t.Fatal(err)
			}
		}
		s = natstest.Start(t, opts)
	}

	const group = "refold"
	logs := &logRecorder{}
	f := newFleet(t, js, group, 8)
	f.base.ExpectedMembers = 1
	f.base.Logger = slog.New(logs)
	m := f.join(ctx, "w1")
	f.waitSettled(20 * time.Second)
	inc := m.Incarnation()
	before := map[string]events.Token{}
	for _, a := range m.Assigned() {
		before[a.Partition] = a.Token
	}
	// Moves: assignments with another token than before (a lapse of the
	// lease during the restarts below revokes and assigns again with the
	// same token).
	moved := func() []string {
		f.rec.mu.Lock()
		defer f.rec.mu.Unlock()
		var out []string
		for p, ivs := range f.rec.ivs {
			for _, iv := range ivs {
				if iv.token != before[p].String() {
					out = append(out, p)
					break
				}
			}
		}
		slices.Sort(out)
		return out
	}

	// A copy of the store as it is now: the log ends at the member's last
	// folded record.
	backup := t.TempDir()
	s.Shutdown()
	s.WaitForShutdown()
	if err := os.CopyFS(backup, os.DirFS(opts.StoreDir)); err != nil {
		t.Fatal(err)
	}
	s = natstest.Start(t, opts)
	f.waitSettled(20 * time.Second)

	// One more log record (junk: the fold skips it), folded by the member.
	subj, _ := events.NewSubjects(group)
	ack, err := js.Publish(ctx, subj.Log(), []byte("not an event"))
	if err != nil {
		t.Fatal(err)
	}
	last := ack.Sequence
	waitFor(t, 10*time.Second, "the member to fold the last record", func() bool { return m.LastApplied() == last })

	// The host "crashes" and its store comes back without that record.
	restart(backup)
	waitFor(t, 20*time.Second, "the refold", func() bool {
		return logs.has(slog.LevelWarn, "parti: projection: the log went backwards")
	})
	// The refold ended once the fold left the lost record (below it, or
	// past it if the log grew since).
	waitFor(t, 20*time.Second, "the refold to end", func() bool { return m.LastApplied() != last })
	f.waitSettled(20 * time.Second)
	if got := m.Incarnation(); got != inc {
		t.Errorf("incarnation %d after the refold, want %d: the member was stopped and rejoined", got, inc)
	}
	if p := moved(); len(p) != 0 {
		t.Errorf("partitions %v moved across the refold, want none", p)
	}
	for _, a := range m.Assigned() {
		if before[a.Partition] != a.Token {
			t.Errorf("partition %s: token %v after the refold, was %v", a.Partition, a.Token, before[a.Partition])
		}
	}
	if err := m.Err(); err != nil {
		t.Errorf("member error %v", err)
	}
}
