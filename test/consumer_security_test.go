package test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/consumer"
	"github.com/parti-io/parti/internal/clock"
	"github.com/parti-io/parti/internal/natstest"
)

// consumerPermissions are exactly what README.md says the consumer helper
// of group g on stream s needs on top of a member's.
func consumerPermissions(g, s string) *server.Permissions {
	p := memberPermissions(g)
	floors := "PARTI_" + g + "_" + s + "_FLOORS"
	dlq := "PARTI_" + g + "_" + s + "_DLQ"
	p.Publish.Allow = append(p.Publish.Allow,
		"$JS.API.STREAM.INFO."+s,
		"$JS.API.CONSUMER.CREATE."+s,
		"$JS.API.CONSUMER.CREATE."+s+".>",
		"$JS.API.CONSUMER.INFO."+s+".>",
		"$JS.API.CONSUMER.DELETE."+s+".>",
		"$JS.API.CONSUMER.MSG.NEXT."+s+".>",
		"$JS.API.STREAM.INFO."+floors,
		"$JS.API.STREAM.CREATE."+floors,
		"$JS.API.STREAM.MSG.GET."+floors,
		"parti-floor."+floors+".>",
		"$JS.API.STREAM.INFO."+dlq,
		"$JS.API.STREAM.CREATE."+dlq,
		"parti-dlq."+g+"."+s+".>",
	)
	return p
}

func TestConsumerHelperWorksWithExactlyTheDocumentedPermissions(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := natstest.Options(t.TempDir())
	opts.Users = []*server.User{
		{Username: "admin", Password: "a"},
		{Username: "worker", Password: "w", Permissions: consumerPermissions("shop", "ORDERS")},
	}
	s := natstest.Start(t, opts)
	_, admin := natstest.Connect(t, s.ClientURL(), nats.UserInfo("admin", "a"))
	if _, err := admin.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	parts := partitions(8)
	log := &consLog{clk: clock.Boot(), n: map[string]map[int]bool{}}
	var cs []*consumer.Consumer
	for i := range 2 {
		_, js := natstest.Connect(t, s.ClientURL(), nats.UserInfo("worker", "w"))
		mc := parti.Config{Group: "shop", ID: "w" + strconv.Itoa(i), Partitions: parts, Timings: testTimings(),
			Window: 200 * time.Millisecond, ExpectedMembers: 2}
		c, err := consumer.Join(ctx, js, mc, consumer.Config{
			Stream: "ORDERS", Subject: "orders.{partition}", Handler: log.handler(mc.ID),
			CheckInterval: 200 * time.Millisecond, OpTimeout: 2 * time.Second,
		})
		if err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
		cs = append(cs, c)
	}
	sent := map[string]int{}
	for _, p := range parts {
		for seq := 1; seq <= 20; seq++ {
			if _, err := admin.Publish(ctx, "orders."+p, []byte(strconv.Itoa(seq))); err != nil {
				t.Fatal(err)
			}
		}
		sent[p] = 20
	}
	waitFor(t, 30*time.Second, "every message", func() bool { return log.distinct() == 8*20 })
	// The periodic check of the helpers' consumers needs its permission
	// too: wait for two of them.
	waitFor(t, 30*time.Second, "two checks of the consumers", func() bool {
		return cs[0].Stats().Checks >= 2 && cs[1].Stats().Checks >= 2
	})
	// One leaves (a hand-off under the same permissions); more messages.
	if err := cs[1].Leave(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		for seq := 21; seq <= 25; seq++ {
			if _, err := admin.Publish(ctx, "orders."+p, []byte(strconv.Itoa(seq))); err != nil {
				t.Fatal(err)
			}
		}
		sent[p] = 25
	}
	waitFor(t, 30*time.Second, "the messages after the leave", func() bool { return log.distinct() == 8*25 })
	for _, c := range cs {
		if err := c.Err(); err != nil && c != cs[1] {
			t.Fatalf("helper stopped: %v", err)
		}
		if st := c.Stats(); st.Errors != 0 {
			t.Fatalf("helper counted %d errors under the documented permissions", st.Errors)
		}
	}
	if err := cs[0].Leave(ctx); err != nil {
		t.Fatal(err)
	}
	consCheck(t, log, sent, nil)
}
