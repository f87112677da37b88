package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// rawLayouts measures the server alone: acknowledgement-free ordered
// consumers over a backlog of n messages spread round-robin over the
// partitions' subjects, each consumer delivering its share, all at once.
// It compares cutting the sorted subjects into contiguous ranges with
// dealing them round-robin, on file and memory storage. Every figure is the
// aggregate rate until every consumer has its share.
func rawLayouts(ctx context.Context, url string, n int, out io.Writer) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for _, storage := range []jetstream.StorageType{jetstream.FileStorage, jetstream.MemoryStorage} {
		for _, P := range []int{1024, 4096} {
			name := fmt.Sprintf("RAW_%s_%d", storage, P)
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"raw" + strconv.Itoa(P) + storage.String() + ".>"}, Storage: storage}); err != nil {
				return err
			}
			prefix := "raw" + strconv.Itoa(P) + storage.String() + "."
			parts := partitionIDs(P)
			if err := publishBacklog(ctx, js, prefix, parts, n); err != nil {
				return err
			}
			for _, c := range []int{1, 4, 16} {
				if P/c > 4096 {
					continue
				}
				for _, deal := range []bool{false, true} {
					if c == 1 && deal {
						continue
					}
					groups := make([][]string, c)
					for i, p := range parts {
						g := i * c / len(parts) // contiguous cut
						if deal {
							g = i % c
						}
						groups[g] = append(groups[g], prefix+p)
					}
					rate, err := rawDrain(ctx, js, "", name, groups, n)
					if err != nil {
						return err
					}
					how := "cut"
					if deal {
						how = "dealt"
					}
					fmt.Fprintf(out, "raw_%s_%d_parts_%dx%d_%s %s msg/s\n", storage, P, c, P/c, how, fmtNum(rate))
				}
			}
		}
	}
	return nil
}

// rawDrain reads the whole backlog through one ordered consumer per group
// of subjects, all at once, and returns the aggregate rate. With url set,
// each consumer has a connection of its own (as the helper's members do);
// otherwise they all share js's.
func rawDrain(ctx context.Context, js jetstream.JetStream, url, stream string, groups [][]string, n int) (float64, error) {
	var got atomic.Int64
	done := make(chan struct{})
	start := time.Now()
	var ccs []jetstream.ConsumeContext
	defer func() {
		for _, cc := range ccs {
			cc.Stop()
		}
	}()
	for _, g := range groups {
		cjs := js
		if url != "" {
			nc, err := nats.Connect(url)
			if err != nil {
				return 0, err
			}
			defer nc.Close()
			if cjs, err = jetstream.New(nc); err != nil {
				return 0, err
			}
		}
		c, err := cjs.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: g})
		if err != nil {
			return 0, err
		}
		cc, err := c.Consume(func(jetstream.Msg) {
			if got.Add(1) == int64(n) {
				close(done)
			}
		})
		if err != nil {
			return 0, err
		}
		ccs = append(ccs, cc)
	}
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		return 0, fmt.Errorf("raw drain: %d of %d after 3 minutes", got.Load(), n)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// dealt deals the partitions' subjects round-robin over c groups.
func dealt(prefix string, parts []string, c int) [][]string {
	groups := make([][]string, c)
	for i, p := range parts {
		groups[i%c] = append(groups[i%c], prefix+p)
	}
	return groups
}

func partitionIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("p%04d", i)
	}
	return out
}

// publishBacklog publishes n small messages, round-robin over the
// partitions' subjects.
func publishBacklog(ctx context.Context, js jetstream.JetStream, prefix string, parts []string, n int) error {
	for i := range n {
		if _, err := js.PublishAsync(prefix+parts[i%len(parts)], []byte(strconv.Itoa(i)), jetstream.WithStallWait(time.Minute)); err != nil {
			return err
		}
		if i%2000 == 1999 {
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}
