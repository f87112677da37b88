package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/embedded"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/replay"
)

// liveReplay loads an export file into a fresh stream on an embedded
// server, then measures the stream's raw read rate (one ordered consumer)
// and replay.Audit's rate reading the same stream.
func liveReplay(ctx context.Context, file, group string, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "parti-bench-live")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	local, err := embedded.StartLocal(dir, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return err
	}
	defer local.Close()
	js := local.JS
	if _, err := projection.Provision(ctx, js, projection.StreamConfig{Group: group}); err != nil {
		return err
	}
	src, err := replay.OpenFile(file, group)
	if err != nil {
		return err
	}
	n := 0
	if err := src.Scan(ctx, replay.ScanOptions{}, func(r *events.Record) error {
		_, err := js.PublishAsync(r.Subject, r.Body)
		n++
		return err
	}); err != nil {
		return err
	}
	<-js.PublishAsyncComplete()

	st, err := js.Stream(ctx, projection.StreamName(group))
	if err != nil {
		return err
	}
	start := time.Now()
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	read := 0
	for read < n {
		b, err := c.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return err
		}
		for range b.Messages() {
			read++
		}
		if b.Error() != nil {
			return b.Error()
		}
	}
	raw := float64(read) / time.Since(start).Seconds()

	ss, err := replay.NewStreamSource(ctx, js, group)
	if err != nil {
		return err
	}
	start = time.Now()
	rep, err := replay.Audit(ctx, ss, replay.AuditOptions{})
	if err != nil {
		return err
	}
	rate := float64(n) / time.Since(start).Seconds()
	if !rep.Clean {
		return fmt.Errorf("the history does not audit clean")
	}
	fmt.Fprintf(stdout, "stream_raw_read_per_s %s msgs/s\n", fmtNum(raw))
	fmt.Fprintf(stdout, "replay_stream_events_per_s %s events/s\n", fmtNum(rate))
	fmt.Fprintf(stdout, "replay_stream_over_raw %s ratio\n", fmtNum(rate/raw))
	return nil
}
