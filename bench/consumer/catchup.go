package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/replay/replaytest"
)

// catchupHistory writes a generated history of about n records (8 members,
// 64 partitions churning, one heartbeat a round) into group's stream, as a
// late joiner meets it, with no snapshot. It returns the log subject's last
// sequence and how many log records there are.
func catchupHistory(ctx context.Context, js jetstream.JetStream, group string, n int) (newest, logRecords uint64, err error) {
	if _, err := projection.Provision(ctx, js, projection.StreamConfig{Group: group}); err != nil {
		return 0, 0, err
	}
	subj, err := events.NewSubjects(group)
	if err != nil {
		return 0, 0, err
	}
	rec := replaytest.NewRecorder(time.Now(), time.Microsecond)
	rec.Sink = func(r *events.Record) error {
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: r.Subject, Data: r.Body}, jetstream.WithStallWait(time.Minute)); err != nil {
			return err
		}
		if r.Subject == subj.Log() {
			newest = r.Seq
			logRecords++
		}
		return nil
	}
	if _, err := replaytest.Generate(replaytest.GenerateConfig{Group: group, Members: 8, Partitions: 64,
		Records: n, HeartbeatsPerRound: 1, Seed: uint64(n)}, rec); err != nil {
		return 0, 0, err
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	return newest, logRecords, nil
}

// rawLogRead reads the log subject from sequence 1 through one ordered
// consumer without decoding anything: the stream's speed for the fold.
func rawLogRead(ctx context.Context, js jetstream.JetStream, group string, logRecords uint64) (float64, error) {
	subj, _ := events.NewSubjects(group)
	c, err := js.OrderedConsumer(ctx, projection.StreamName(group), jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj.Log()}})
	if err != nil {
		return 0, err
	}
	var got atomic.Uint64
	done := make(chan struct{})
	start := time.Now()
	cc, err := c.Consume(func(m jetstream.Msg) {
		if got.Add(1) == logRecords {
			close(done)
		}
	})
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("raw read: %d of %d log records after 5 minutes", got.Load(), logRecords)
	}
	return float64(logRecords) / time.Since(start).Seconds(), nil
}

// projectionFold starts a projection from sequence 1 (no snapshot), with a
// hook as a member has one, and returns its rate until it folded newest.
func projectionFold(ctx context.Context, js jetstream.JetStream, group string, newest, logRecords uint64) (float64, error) {
	var folded uint64
	start := time.Now()
	p, err := projection.Start(ctx, js, projection.Config{Group: group, SkipSnapshot: true,
		OnRecord: func(events.Record, decider.Outcome) { folded++ }})
	if err != nil {
		return 0, err
	}
	defer p.Stop()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := p.WaitFor(wctx, newest); err != nil {
		return 0, fmt.Errorf("fold: %w", err)
	}
	return float64(logRecords) / time.Since(start).Seconds(), nil
}

// memberCatchup times parti.Join on a group whose log has no snapshot: the
// member folds the whole log before Join returns.
func memberCatchup(ctx context.Context, js jetstream.JetStream, group string, logRecords uint64) (float64, error) {
	start := time.Now()
	m, err := parti.Join(ctx, js, parti.Fast(group))
	if err != nil {
		return 0, err
	}
	took := time.Since(start)
	m.Stop()
	return float64(logRecords) / took.Seconds(), nil
}

// catchup builds one history of about n records without a snapshot and
// measures, per run, the raw read of its log, the projection's fold from
// sequence 1, and parti.Join on it.
func (b *bench) catchup(ctx context.Context, n int) error {
	group := "cu" + b.next()
	start := time.Now()
	newest, logRecords, err := catchupHistory(ctx, b.js, group, n)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.stderr, "catch-up history: %d records (%d log) in %v\n", n, logRecords, time.Since(start).Round(time.Millisecond))
	b.add("catchup_log_records", float64(logRecords))
	for r := 0; r < b.runs; r++ {
		raw, err := rawLogRead(ctx, b.js, group, logRecords)
		if err != nil {
			return err
		}
		b.add("catchup_raw_per_s", raw)
		fold, err := projectionFold(ctx, b.js, group, newest, logRecords)
		if err != nil {
			return err
		}
		b.add("catchup_fold_per_s", fold)
		b.add("catchup_over_raw_run", fold/raw)
		join, err := memberCatchup(ctx, b.js, group, logRecords)
		if err != nil {
			return err
		}
		b.add("catchup_join_per_s", join)
	}
	return b.js.DeleteStream(ctx, projection.StreamName(group))
}
