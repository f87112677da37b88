package consumer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/consumer"
	"github.com/parti-io/parti/projection"
)

// floorOf reads a partition's floor record from the helper's floor stream
// (0 when it has none).
func (v *env) floorOf(group, partition string) uint64 {
	v.t.Helper()
	s, err := v.js.Stream(context.Background(), "PARTI_"+group+"_ORDERS_FLOORS")
	if err != nil {
		v.t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), "parti-floor.PARTI_"+group+"_ORDERS_FLOORS."+base64.RawURLEncoding.EncodeToString([]byte(partition)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0
	}
	if err != nil {
		v.t.Fatal(err)
	}
	var r struct {
		Floor uint64 `json:"floor"`
	}
	if err := json.Unmarshal(m.Data, &r); err != nil {
		v.t.Fatal(err)
	}
	return r.Floor
}

// With ConfirmEach, a crash leaves exactly the message being handled to be
// handled again: the floor is confirmed past every message before the next
// one starts.
func TestConfirmEachLeavesOnlyTheMessageInFlight(t *testing.T) {
	v := newEnv(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var handled atomic.Int64
	blocked := make(chan struct{})
	cfg := v.config(func(ctx context.Context, m *consumer.Msg) error {
		if string(m.Data) == "p000:7" {
			close(blocked)
			<-ctx.Done() // in flight when the member crashes
			return ctx.Err()
		}
		handled.Add(1)
		return nil
	})
	cfg.ConfirmEach = true
	cfg.CommitInterval = time.Hour // only ConfirmEach writes floors here
	c, err := consumer.Join(ctx, v.js, v.member("ce"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.publish("p000", 0, 10) // stream sequences 1..10; "p000:7" is 8
	<-blocked
	if got := v.floorOf("ce", "p000"); got != 7 {
		t.Fatalf("floor while message 8 is in flight = %d, want 7", got)
	}
	c.Stop()
	if got := v.floorOf("ce", "p000"); got != 7 {
		t.Fatalf("floor after the crash = %d, want 7 (only the message in flight is handled again)", got)
	}
	if handled.Load() != 7 {
		t.Fatalf("handled %d, want 7", handled.Load())
	}
}

// By default floors are written in the background, within CommitInterval
// of the messages processed, and exactly on a graceful hand-off; a new
// member resumes at the floor.
func TestFloorsFollowProcessingAndHandOff(t *testing.T) {
	v := newEnv(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seen
	h := got.handler()
	cfg := v.config(h)
	cfg.CommitInterval = 50 * time.Millisecond
	c, err := consumer.Join(ctx, v.js, v.member("bf"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.publish("p000", 0, 5) // 1..5
	v.publish("p001", 0, 5) // 6..10
	waitUntil(t, 10*time.Second, "every message", func() bool { return got.total() == 10 })
	waitUntil(t, 10*time.Second, "the floors", func() bool { return v.floorOf("bf", "p000") >= 5 && v.floorOf("bf", "p001") == 10 })
	if err := c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	// The hand-off wrote p000's floor past the other partition's messages
	// its consumer read: the next owner need not read them again.
	if f := v.floorOf("bf", "p000"); f != 10 {
		t.Fatalf("p000's floor after the leave = %d, want 10", f)
	}
	v.publish("p000", 5, 3) // 11..13
	var again seen
	c2, err := consumer.Join(ctx, v.js, v.member("bf"), v.config(again.handler()))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Leave(ctx)
	waitUntil(t, 10*time.Second, "the new messages", func() bool { return again.total() == 3 })
	if g, w := again.get("p000"), bodies("p000", 5, 3); !slices.Equal(g, w) {
		t.Fatalf("new member handled %v, want %v", g, w)
	}
}

// A partition blocked by a failing message holds at most PartitionBuffer
// messages; the rest are read again once it drained, and none is lost or
// reordered, while the other partitions go on.
func TestOverflowIsReadAgainInOrder(t *testing.T) { overflowReadAgain(t) }

func overflowReadAgain(t *testing.T) {
	v := newEnv(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seen
	var fails atomic.Int64
	release := make(chan struct{})
	cfg := v.config(func(_ context.Context, m *consumer.Msg) error {
		if string(m.Data) == "p000:0" {
			select {
			case <-release:
			default:
				fails.Add(1)
				return errors.New("not yet")
			}
		}
		got.add(m.Partition, string(m.Data))
		return nil
	})
	cfg.PartitionBuffer = 4
	cfg.MaxDeliveries = -1
	c, err := consumer.Join(ctx, v.js, v.member("ov"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Leave(ctx)
	v.publish("p000", 0, 40)
	v.publish("p001", 0, 40)
	waitUntil(t, 10*time.Second, "the other partition", func() bool { return len(got.get("p001")) == 40 })
	if n := len(got.get("p000")); n != 0 {
		t.Fatalf("blocked partition handled %d messages", n)
	}
	close(release)
	waitUntil(t, 20*time.Second, "the blocked partition", func() bool { return len(got.get("p000")) == 40 })
	if g, w := got.get("p000"), bodies("p000", 0, 40); !slices.Equal(g, w) {
		t.Fatalf("p000: got %v, want %v", g, w)
	}
	if fails.Load() == 0 {
		t.Fatal("the first message never failed")
	}
	if st := c.Stats(); st.Reconfigs < 2 {
		t.Fatalf("the overflowed partition was never read again (stats %+v)", st)
	}
}

// StartNew: partitions that never had a floor start after what the stream
// held when the floor stream was created.
func TestStartNewSkipsTheOldBacklog(t *testing.T) {
	v := newEnv(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v.publish("p000", 0, 5)
	var got seen
	cfg := v.config(got.handler())
	cfg.StartNew = true
	c, err := consumer.Join(ctx, v.js, v.member("sn"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Leave(ctx)
	v.publish("p000", 5, 2)
	waitUntil(t, 10*time.Second, "the new messages", func() bool { return got.total() == 2 })
	if g, w := got.get("p000"), bodies("p000", 5, 2); !slices.Equal(g, w) {
		t.Fatalf("got %v, want %v", g, w)
	}
}

// A floor written under a newer token (a newer owner) fences the member out
// of the partition: it stops consuming it and never overwrites the record.
func TestNewerOwnersFloorFencesTheMemberOut(t *testing.T) {
	v := newEnv(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seen
	var errs sync.Map
	cfg := v.config(got.handler())
	cfg.CommitInterval = 20 * time.Millisecond
	cfg.Metrics = errMetrics{&errs}
	c, err := consumer.Join(ctx, v.js, v.member("fe"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Leave(ctx)
	v.publish("p000", 0, 3)
	waitUntil(t, 10*time.Second, "the first messages", func() bool { return got.total() == 3 })
	waitUntil(t, 10*time.Second, "their floor", func() bool { return v.floorOf("fe", "p000") == 3 })
	// A newer owner's record, as if the partition had moved on.
	rec := `{"floor":3,"token":{"seq":1152921504606846976,"inc":1},"member":"someone-else"}`
	if _, err := v.js.Publish(ctx, "parti-floor.PARTI_fe_ORDERS_FLOORS."+base64.RawURLEncoding.EncodeToString([]byte("p000")), []byte(rec)); err != nil {
		t.Fatal(err)
	}
	v.publish("p000", 3, 5)
	waitUntil(t, 10*time.Second, "the fence to be noticed", func() bool { _, ok := errs.Load("floor-fence"); return ok })
	// Messages already held may have been handled before the next floor
	// write met the fence; after it, none is.
	n0 := len(got.get("p000"))
	v.publish("p000", 8, 5)
	v.publish("p001", 0, 2)
	waitUntil(t, 10*time.Second, "the other partition", func() bool { return len(got.get("p001")) == 2 })
	if n := len(got.get("p000")); n != n0 {
		t.Fatalf("fenced partition handled %d more messages", n-n0)
	}
	if f := v.floorOf("fe", "p000"); f != 3 {
		t.Fatalf("the fenced member overwrote the newer owner's floor: %d", f)
	}
}

// A group migrated to a new generation (a new group ID) keeps its
// partitions' progress when the helper names the old floor stream: nothing
// is handled again.
func TestMigratedGroupResumesFromTheOldFloors(t *testing.T) {
	v := newEnv(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seen
	h := got.handler()
	mc := v.member("gen1")
	mc.ID = "w0"
	c, err := consumer.Join(ctx, v.js, mc, v.config(h))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range v.parts {
		v.publish(p, 0, 5)
	}
	waitUntil(t, 10*time.Second, "the first messages", func() bool { return got.total() == 20 })
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := projection.Migrate(ctx, v.js, projection.MigrateConfig{From: "gen1", To: "gen2", By: "test"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range v.parts {
		v.publish(p, 5, 3)
	}
	mc = v.member("gen2")
	mc.ID = "w0"
	cfg := v.config(h)
	cfg.FloorStream = "PARTI_gen1_ORDERS_FLOORS"
	c2, err := consumer.Join(ctx, v.js, mc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Leave(ctx)
	waitUntil(t, 10*time.Second, "the new messages", func() bool { return got.total() == 32 })
	for _, p := range v.parts {
		if g, w := got.get(p), bodies(p, 0, 8); !slices.Equal(g, w) {
			t.Fatalf("partition %s: got %v, want %v (each once)", p, g, w)
		}
	}
}
