package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parti-io/parti/internal/waitfor"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/consumer"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/liveness"
)

// env is one embedded server with a user stream "ORDERS" on orders.<p>.
type env struct {
	t     *testing.T
	url   string
	nc    *nats.Conn
	js    jetstream.JetStream
	parts []string
}

func newEnv(t *testing.T, nparts int) *env {
	t.Helper()
	s := natstest.Server(t)
	nc, js := natstest.Connect(t, s.ClientURL())
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	parts := make([]string, nparts)
	for i := range parts {
		parts[i] = fmt.Sprintf("p%03d", i)
	}
	return &env{t: t, url: s.ClientURL(), nc: nc, js: js, parts: parts}
}

func (v *env) member(group string) parti.Config {
	return parti.Config{
		Group: group, Partitions: v.parts, Timings: liveness.Test(),
		Window: 100 * time.Millisecond, ExpectedMembers: 1,
	}
}

func (v *env) config(h consumer.Handler) consumer.Config {
	return consumer.Config{
		Stream: "ORDERS", Subject: "orders.{partition}", Handler: h,
		Backoff:      []time.Duration{20 * time.Millisecond},
		DrainTimeout: 5 * time.Second, OpTimeout: 2 * time.Second,
	}
}

// publish publishes n messages to partition p, bodies "p:i" from first.
func (v *env) publish(p string, first, n int) {
	v.t.Helper()
	for i := first; i < first+n; i++ {
		if _, err := v.js.PublishAsync("orders."+p, []byte(p+":"+strconv.Itoa(i))); err != nil {
			v.t.Fatal(err)
		}
	}
	select {
	case <-v.js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		v.t.Fatal("publish did not complete")
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	waitfor.Until(t, timeout, what, cond)
}

type seen struct {
	mu   sync.Mutex
	msgs map[string][]string // partition → bodies in processing order
}

func (s *seen) add(p, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.msgs == nil {
		s.msgs = map[string][]string{}
	}
	s.msgs[p] = append(s.msgs[p], body)
}

// handler records every message it is given and returns nil.
func (s *seen) handler() consumer.Handler {
	return func(_ context.Context, m *consumer.Msg) error {
		s.add(m.Partition, string(m.Data))
		return nil
	}
}

func (s *seen) get(p string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs[p])
}

func (s *seen) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.msgs {
		n += len(v)
	}
	return n
}

func bodies(p string, first, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = p + ":" + strconv.Itoa(first+i)
	}
	return out
}

func TestConsumesOwnedPartitionsInOrder(t *testing.T) {
	v := newEnv(t, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seen
	c, err := consumer.Join(ctx, v.js, v.member("g1"), v.config(got.handler()))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range v.parts {
		v.publish(p, 0, 50)
	}
	waitUntil(t, 20*time.Second, "every message", func() bool { return got.total() == 8*50 })
	for _, p := range v.parts {
		if g, w := got.get(p), bodies(p, 0, 50); !slices.Equal(g, w) {
			t.Fatalf("partition %s: got %v, want %v", p, g, w)
		}
	}
	if err := c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(c.Err(), parti.ErrStopped) {
		t.Fatalf("Err after Leave = %v", c.Err())
	}
	st := c.Stats()
	if st.Processed != 400 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFailureBlocksPartitionThenDeadLetters(t *testing.T) {
	v := newEnv(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seen
	var tries atomic.Int64
	cfg := v.config(func(_ context.Context, m *consumer.Msg) error {
		if string(m.Data) == "p000:3" {
			tries.Add(1)
			if m.Attempt == 2 {
				panic("boom")
			}
			return errors.New("poison")
		}
		got.add(m.Partition, string(m.Data))
		return nil
	})
	cfg.MaxDeliveries = 4
	cfg.PartitionBuffer = 2 // p000 holds two, hands the rest back
	c, err := consumer.Join(ctx, v.js, v.member("g2"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range v.parts {
		v.publish(p, 0, 10)
	}
	waitUntil(t, 20*time.Second, "the other partitions", func() bool { return got.total() >= 3*10+9 })
	if n := tries.Load(); n != 4 {
		t.Fatalf("poison message tried %d times, want 4", n)
	}
	// Order held: p000 went on only after the poison message left.
	want := append(bodies("p000", 0, 3), bodies("p000", 4, 6)...)
	if g := got.get("p000"); !slices.Equal(g, want) {
		t.Fatalf("p000: got %v, want %v", g, want)
	}
	dl, err := v.js.Stream(ctx, "PARTI_g2_ORDERS_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := dl.GetLastMsgForSubject(ctx, "parti-dlq.g2.ORDERS.p000")
	if err != nil {
		t.Fatal(err)
	}
	if string(raw.Data) != "p000:3" || raw.Header.Get("Parti-Reason") != "poison" || raw.Header.Get("Parti-Attempts") != "4" ||
		raw.Header.Get("Parti-Partition") != "p000" || raw.Header.Get("Parti-Stream-Seq") == "0" {
		t.Fatalf("dead letter %q headers %v", raw.Data, raw.Header)
	}
	st := c.Stats()
	if st.Failed != 4 || st.Panics != 1 || st.DeadLettered != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestManualAckAndInFlightBound(t *testing.T) {
	v := newEnv(t, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seen
	var inflight, peak atomic.Int64
	cfg := v.config(func(_ context.Context, m *consumer.Msg) error {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.AfterFunc(5*time.Millisecond, func() { // settled later, elsewhere
			got.add(m.Partition, string(m.Data))
			inflight.Add(-1)
			if err := m.Ack(); err != nil {
				t.Errorf("ack: %v", err)
			}
			if err := m.Ack(); !errors.Is(err, consumer.ErrSettled) {
				t.Errorf("second ack: %v", err)
			}
		})
		return nil
	})
	cfg.ManualAck = true
	cfg.MaxInFlight = 4
	c, err := consumer.Join(ctx, v.js, v.member("g3"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range v.parts {
		v.publish(p, 0, 10)
	}
	waitUntil(t, 20*time.Second, "every message", func() bool { return got.total() == 160 })
	if p := peak.Load(); p > 4 {
		t.Fatalf("%d messages unsettled at once, bound 4", p)
	}
	for _, p := range v.parts {
		if g, w := got.get(p), bodies(p, 0, 10); !slices.Equal(g, w) {
			t.Fatalf("partition %s: got %v, want %v", p, g, w)
		}
	}
	if err := c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConsumerDeletedOrChangedFromOutsideIsRecreated(t *testing.T) {
	v := newEnv(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seen
	cfg := v.config(got.handler())
	cfg.CheckInterval = 200 * time.Millisecond
	var errs sync.Map
	cfg.Metrics = errMetrics{&errs}
	c, err := consumer.Join(ctx, v.js, v.member("g4"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range v.parts {
		v.publish(p, 0, 5)
	}
	waitUntil(t, 20*time.Second, "first messages", func() bool { return got.total() == 20 })
	stream, err := v.js.Stream(ctx, "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	// The member's consumer on ORDERS: all four partitions fit in one
	// (partitions assigned in two batches get two, merged soon after).
	mineNow := func() []string {
		var names []string
		for n := range stream.ConsumerNames(ctx).Name() {
			if strings.HasPrefix(n, "parti_"+c.Member().ID()+"_") {
				names = append(names, n)
			}
		}
		return names
	}
	mine := func() string {
		t.Helper()
		waitUntil(t, 10*time.Second, "one consumer of the member", func() bool { return len(mineNow()) == 1 })
		return mineNow()[0]
	}
	name := mine()
	if err := stream.DeleteConsumer(ctx, name); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the deletion to be noticed", func() bool { _, ok := errs.Load("consumer-deleted"); return ok })
	for _, p := range v.parts {
		v.publish(p, 5, 5)
	}
	waitUntil(t, 20*time.Second, "messages after the deletion", func() bool { return got.total() == 40 })

	// Change it: one filter only.
	name = mine()
	cons, err := stream.Consumer(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	cc := cons.CachedInfo().Config
	cc.FilterSubjects = cc.FilterSubjects[:1]
	if _, err := stream.UpdateConsumer(ctx, cc); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the change to be noticed", func() bool { _, ok := errs.Load("consumer-changed"); return ok })
	for _, p := range v.parts {
		v.publish(p, 10, 5)
	}
	waitUntil(t, 20*time.Second, "messages after the change", func() bool { return got.total() == 60 })
	for _, p := range v.parts {
		if g, w := got.get(p), bodies(p, 0, 15); !slices.Equal(g, w) {
			t.Fatalf("partition %s: got %v, want %v", p, g, w)
		}
	}
	if st := c.Stats(); st.Reconfigs < 3 {
		t.Fatalf("stats %+v", st)
	}
	if err := c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
}

type errMetrics struct{ m *sync.Map }

func (errMetrics) Processed(string, time.Duration)    {}
func (errMetrics) Failed(string, string)              {}
func (errMetrics) DeadLettered(string)                {}
func (errMetrics) InFlight(int)                       {}
func (errMetrics) Partitions(int)                     {}
func (errMetrics) Reconfigured(string, time.Duration) {}
func (e errMetrics) Error(op string, err error)       { e.m.Store(op, err) }

func TestDrainTimeoutStopsTheMemberWithoutRelease(t *testing.T) {
	v := newEnv(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stuck := make(chan struct{})
	defer close(stuck)
	started := make(chan struct{}, 1)
	cfg := v.config(func(_ context.Context, m *consumer.Msg) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-stuck // ignores its context
		return nil
	})
	cfg.DrainTimeout = 300 * time.Millisecond
	c, err := consumer.Join(ctx, v.js, v.member("g5"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.publish("p000", 0, 1)
	<-started
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
	defer lcancel()
	_ = c.Leave(lctx)
	select {
	case <-c.Done():
	case <-lctx.Done():
		t.Fatal("helper did not stop")
	}
	if !errors.Is(c.Err(), consumer.ErrDrainTimeout) {
		t.Fatalf("Err = %v, want ErrDrainTimeout", c.Err())
	}
	// The member never released what the stuck handler held.
	s := c.Member().State()
	idx, _ := s.PartitionIndex("p000")
	if o := s.Owners[idx].Owner; o != c.Member().ID() {
		t.Fatalf("p000 owned by %q after the drain timeout; want it still held by %s", o, c.Member().ID())
	}
}

func TestPermissionErrorStopsWithAClearError(t *testing.T) {
	opts := natstest.Options(t.TempDir())
	opts.Users = []*server.User{
		{Username: "admin", Password: "a"},
		{Username: "worker", Password: "w", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.CONSUMER.CREATE.ORDERS", "$JS.API.CONSUMER.CREATE.ORDERS.>"}},
		}},
	}
	s := natstest.Start(t, opts)
	_, admin := natstest.Connect(t, s.ClientURL(), nats.UserInfo("admin", "a"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := admin.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	_, js := natstest.Connect(t, s.ClientURL(), nats.UserInfo("worker", "w"))
	v := &env{t: t, js: js, parts: []string{"p000", "p001"}}
	cfg := v.config(func(context.Context, *consumer.Msg) error { return nil })
	cfg.OpTimeout = 500 * time.Millisecond
	c, err := consumer.Join(ctx, js, v.member("g6"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("helper did not stop")
	}
	if !errors.Is(c.Err(), consumer.ErrPermission) {
		t.Fatalf("Err = %v, want ErrPermission", c.Err())
	}
	t.Logf("stopped with: %v", c.Err())
}

func TestFourThousandPartitions(t *testing.T) {
	v := newEnv(t, 4096)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seen
	cfg := v.config(got.handler())
	start := time.Now()
	mc := v.member("g7")
	mc.ExpectedMembers = 2
	a, err := consumer.Join(ctx, v.js, mc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := consumer.Join(ctx, v.js, mc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range v.parts {
		if _, err := v.js.PublishAsync("orders."+p, []byte(p+":0")); err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 {
			<-v.js.PublishAsyncComplete()
		}
	}
	<-v.js.PublishAsyncComplete()
	waitUntil(t, 60*time.Second, "one message per partition", func() bool { return got.total() == 4096 })
	t.Logf("4,096 partitions over two members: first message of every partition %v after the joins", time.Since(start))
	if sa, sb := a.Stats().Partitions, b.Stats().Partitions; sa+sb != 4096 {
		t.Fatalf("consuming %d + %d partitions", sa, sb)
	}
	start = time.Now()
	if err := b.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "the survivor to consume everything", func() bool { return a.Stats().Partitions == 4096 })
	t.Logf("leave of one member: the other consumes all 4,096 after %v", time.Since(start))
	for _, p := range v.parts[:100] {
		if _, err := v.js.PublishAsync("orders."+p, []byte(p+":1")); err != nil {
			t.Fatal(err)
		}
	}
	<-v.js.PublishAsyncComplete()
	waitUntil(t, 30*time.Second, "messages after the leave", func() bool { return got.total() == 4196 })
	if err := a.Leave(ctx); err != nil {
		t.Fatal(err)
	}
}
