package consumer_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/parti-io/parti/consumer"
)

// Between the tidy ticks' full looks, the control goroutine looks only at
// the partitions something happened to. With the tidy ticks an hour apart,
// every change must still be acted on by the kick that reports it: new
// partitions get consumers, an overflowed partition is read again, revoked
// ones are handed off and the new owner's are consumed. A change that
// forgets to touch its partition stalls here until the deadline.
func TestKicksAloneKeepConsumersInLine(t *testing.T) {
	consumer.SetTidyEvery(time.Hour)
	defer consumer.SetTidyEvery(0)
	t.Run("overflow", overflowReadAgain)
	// Hundreds of partitions at once: their floor loads end over a while,
	// and the partitions loaded first are held until the loads stop.
	t.Run("held", func(t *testing.T) {
		v := newEnv(t, 400)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var got seen
		c, err := consumer.Join(ctx, v.js, v.member("held"), v.config(got.handler()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Leave(ctx)
		for _, p := range v.parts {
			v.publish(p, 0, 1)
		}
		waitUntil(t, 20*time.Second, "every partition's message", func() bool { return got.total() == len(v.parts) })
		if n := c.Stats().Partitions; n != len(v.parts) {
			t.Fatalf("consumes %d partitions, want %d", n, len(v.parts))
		}
	})
	t.Run("rebalance", func(t *testing.T) {
		v := newEnv(t, 8)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var got seen
		mcfg := v.member("kicks")
		a, err := consumer.Join(ctx, v.js, mcfg, v.config(got.handler()))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range v.parts {
			v.publish(p, 0, 5)
		}
		waitUntil(t, 20*time.Second, "one member: every message", func() bool { return got.total() == 8*5 })
		if n := a.Stats().Partitions; n != 8 {
			t.Fatalf("one member consumes %d partitions, want 8", n)
		}
		// A second member: the first hands some partitions over, the
		// second consumes them.
		mcfg.ExpectedMembers = 2
		b, err := consumer.Join(ctx, v.js, mcfg, v.config(got.handler()))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Leave(ctx)
		waitUntil(t, 20*time.Second, "the partitions shared", func() bool {
			na, nb := a.Stats().Partitions, b.Stats().Partitions
			return na > 0 && nb > 0 && na+nb == 8
		})
		for _, p := range v.parts {
			v.publish(p, 5, 5)
		}
		waitUntil(t, 20*time.Second, "two members: every message", func() bool { return got.total() == 8*10 })
		// The first leaves: the second takes everything over.
		if err := a.Leave(ctx); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 20*time.Second, "the leaver's partitions taken over", func() bool { return b.Stats().Partitions == 8 })
		for _, p := range v.parts {
			v.publish(p, 10, 5)
		}
		waitUntil(t, 20*time.Second, "after the leave: every message", func() bool { return got.total() == 8*15 })
		// Graceful changes only: each message once, in order.
		for _, p := range v.parts {
			if g, w := got.get(p), bodies(p, 0, 15); !slices.Equal(g, w) {
				t.Fatalf("partition %s: handled %v, want %v", p, g, w)
			}
		}
	})
}
