package test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/replay/replaytest"
)

// lateJoinSizes returns the history lengths (records on the stream) the
// late-joiner test builds: 10,000 and 50,000 in make test (building costs
// about 0.2 ms a record under -race); 10,000 and 1,000,000 under make soak
// (SOAK_DURATION set), or LATE_JOIN_RECORDS=N for the long one.
func lateJoinSizes() []int {
	long := 50_000
	if os.Getenv("SOAK_DURATION") != "" {
		long = 1_000_000
	}
	if n, err := strconv.Atoi(os.Getenv("LATE_JOIN_RECORDS")); err == nil && n > 0 {
		long = n
	}
	return []int{10_000, long}
}

// afterSnapshot is how many log records land after the snapshot.
const afterSnapshot = 40

// history is a group's history built on a live stream.
type history struct {
	group    string
	records  int    // stream messages
	log      uint64 // log records
	snapAt   uint64 // the snapshot's sequence (the log's last before it)
	newest   uint64 // the log's last sequence
	state    *decider.State
	build    time.Duration
	snapshot bool
}

// buildHistory writes a generated history of about n records (a group of 8
// members and 64 partitions churning: leaves, crashes, restarts, joins,
// decisions and releases, one heartbeat a round) into group's stream as
// fast as the server takes it, then a snapshot of its fold, then
// afterSnapshot more log records (claims).
func buildHistory(t *testing.T, ctx context.Context, js jetstream.JetStream, group string, n int) *history {
	t.Helper()
	start := time.Now()
	if _, err := projection.Provision(ctx, js, projection.StreamConfig{Group: group}); err != nil {
		t.Fatal(err)
	}
	subj, _ := events.NewSubjects(group)
	h := &history{group: group, state: decider.New()}
	rec := replaytest.NewRecorder(time.Now(), time.Microsecond)
	rec.Sink = func(r *events.Record) error {
		// Bodies only: the stream numbers them as the recorder did (it
		// starts empty and takes them in order), so the decisions' fences
		// and the fold are the same; fence and TTL headers are left out to
		// go fast.
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: r.Subject, Data: r.Body}, jetstream.WithStallWait(time.Minute)); err != nil {
			return err
		}
		if r.Subject == subj.Log() {
			decider.Apply(h.state, *r)
			h.log++
		}
		h.records++
		return nil
	}
	if _, err := replaytest.Generate(replaytest.GenerateConfig{Group: group, Members: 8, Partitions: 64,
		Records: n, HeartbeatsPerRound: 1, Seed: uint64(n)}, rec); err != nil {
		t.Fatal(err)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	st, err := js.Stream(ctx, projection.StreamName(group))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(h.records) || h.state.LastSeq == 0 {
		t.Fatalf("the stream holds %d messages, %d were published", info.State.Msgs, h.records)
	}
	app := projection.NewAppender(js, subj)
	h.snapAt = h.state.LastSeq
	if err := projection.WriteSnapshot(ctx, app, h.state.Clone(), time.Hour, 0); err != nil {
		t.Fatal(err)
	}
	for i := range afterSnapshot {
		c, _ := decider.Claim(fmt.Sprintf("late-%03d", i), fmt.Sprintf("late-nonce-%d", i), 0)
		seq, err := app.Append(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		decider.Apply(h.state, events.NewRecord(seq, time.Time{}, subj.Log(), nil, events.MustEncode(events.MaxVersion, c)))
		h.log++
	}
	h.newest = h.state.LastSeq
	h.build = time.Since(start)
	return h
}

// lateFold starts a projection as a joining member does and returns how
// many log records it folded, and how long it took to catch up.
func lateFold(t *testing.T, ctx context.Context, js jetstream.JetStream, h *history, skipSnapshot bool) (uint64, time.Duration, *decider.State) {
	t.Helper()
	var folded uint64
	start := time.Now()
	p, err := projection.Start(ctx, js, projection.Config{Group: h.group, SkipSnapshot: skipSnapshot,
		OnRecord: func(events.Record, decider.Outcome) { folded++ }})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitFor(ctx, h.newest); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	p.Stop() // the fold goroutine ended: folded is ours to read
	return folded, took, p.State()
}

// A member joining a group with a long history catches up from the newest
// snapshot: it folds exactly the log records after the snapshot, whatever
// the history's length (asserted structurally; the times are reported).
func TestLateJoinerCatchesUpFromTheSnapshot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	for _, n := range lateJoinSizes() {
		group := fmt.Sprintf("late%d", n)
		h := buildHistory(t, ctx, js, group, n)
		folded, took, st := lateFold(t, ctx, js, h, false)
		if folded != afterSnapshot {
			t.Fatalf("%s: the late joiner folded %d log records; %d came after the snapshot at %d", group, folded, afterSnapshot, h.snapAt)
		}
		_, want, _ := decider.Snapshot(h.state)
		if _, got, _ := decider.Snapshot(st); got != want {
			t.Fatalf("%s: the late joiner's state differs from the fold of the whole log", group)
		}
		line := fmt.Sprintf("history %d records (%d log), built in %v: from the snapshot the late joiner folded %d records in %v",
			h.records, h.log, h.build.Round(time.Millisecond), folded, took.Round(time.Microsecond))
		if n <= 10_000 || os.Getenv("SOAK_DURATION") != "" {
			// The contrast: a fold from sequence 1 reads the whole log.
			all, full, _ := lateFold(t, ctx, js, h, true)
			if all != h.log {
				t.Fatalf("%s: the fold from sequence 1 folded %d records, the log holds %d", group, all, h.log)
			}
			line += fmt.Sprintf("; without the snapshot it folds %d records in %v", all, full.Round(time.Millisecond))
		}
		// A member joining now takes the same path (projection.Start):
		// time its Join (it appends its claim: last).
		cfg := parti.Fast(group)
		start := time.Now()
		m, err := parti.Join(ctx, js, cfg)
		if err != nil {
			t.Fatal(err)
		}
		join := time.Since(start)
		m.Stop()
		line += fmt.Sprintf("; parti.Join returned in %v", join.Round(time.Microsecond))
		t.Log(line)
	}
}
