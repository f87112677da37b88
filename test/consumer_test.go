package test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/consumer"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/internal/clock"
	"github.com/parti-io/parti/internal/natstest"
)

// consRecord is one handler invocation: who handled which message when, on
// one clock shared by every member of the test.
type consRecord struct {
	who        string // member ID#generation
	part       string
	seq        int    // the producer's number
	sseq       uint64 // the stream sequence
	start, end time.Duration
}

// consLog records every processed message.
type consLog struct {
	clk  clock.Clock
	mu   sync.Mutex
	recs []consRecord
	n    map[string]map[int]bool // distinct (partition, seq) processed
}

func (l *consLog) handler(who string) consumer.Handler {
	return func(_ context.Context, m *consumer.Msg) error {
		seq, err := strconv.Atoi(string(m.Data))
		if err != nil {
			return fmt.Errorf("%w: bad body %q", consumer.ErrPermanent, m.Data)
		}
		start := l.clk.Now()
		// Some work, so that hand-offs and the crash meet messages in
		// flight.
		time.Sleep(2 * time.Millisecond)
		end := l.clk.Now()
		l.mu.Lock()
		l.recs = append(l.recs, consRecord{who: who, part: m.Partition, seq: seq, sseq: m.Seq, start: start, end: end})
		if l.n[m.Partition] == nil {
			l.n[m.Partition] = map[int]bool{}
		}
		l.n[m.Partition][seq] = true
		l.mu.Unlock()
		return nil
	}
}

func (l *consLog) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.n {
		n += len(s)
	}
	return n
}

// consProducer publishes sequence-numbered messages (1, 2, … per
// partition) round after round until stopped; a message is counted once its
// publish is acknowledged, and a failed one is published again with the
// same number, so every partition's numbers are contiguous.
type consProducer struct {
	js    jetstream.JetStream
	parts []string
	every time.Duration
	mu    sync.Mutex
	sent  map[string]int
	total atomic.Int64
	stop  chan struct{}
	done  chan struct{}
}

func (p *consProducer) run(t *testing.T) {
	defer close(p.done)
	tick := time.NewTicker(p.every)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		for _, part := range p.parts {
			p.mu.Lock()
			seq := p.sent[part] + 1
			p.mu.Unlock()
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := p.js.Publish(ctx, "events."+part, []byte(strconv.Itoa(seq)), jetstream.WithMsgID(part+"/"+strconv.Itoa(seq)))
				cancel()
				if err == nil {
					break
				}
				t.Logf("publish %s/%d: %v (retrying)", part, seq, err)
				select {
				case <-p.stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
			p.mu.Lock()
			p.sent[part] = seq
			p.mu.Unlock()
			p.total.Add(1)
		}
	}
}

// consFleet is a set of consumer helpers of one group, each on its own
// connection (so that a crash can cut it).
type consFleet struct {
	t       *testing.T
	url     string
	group   string
	parts   []string
	log     *consLog
	base    parti.Config
	mu      sync.Mutex
	running map[string]*consMember
	gen     map[string]int
	crashed map[string]map[string]uint64 // member ID#generation that crashed → its partitions' floors then
}

type consMember struct {
	name string
	c    *consumer.Consumer
	nc   *nats.Conn
}

func (f *consFleet) join(ctx context.Context, id string) *consMember {
	f.t.Helper()
	f.mu.Lock()
	f.gen[id]++
	name := fmt.Sprintf("%s#%d", id, f.gen[id])
	f.mu.Unlock()
	nc, js := natstest.Connect(f.t, f.url)
	mc := f.base
	mc.ID = id
	c, err := consumer.Join(ctx, js, mc, consumer.Config{
		Stream: "EVENTS", Subject: "events.{partition}", Handler: f.log.handler(name),
		DrainTimeout: 10 * time.Second, OpTimeout: 3 * time.Second,
		CheckInterval: 2 * time.Second,
	})
	if err != nil {
		f.t.Fatalf("join %s: %v", id, err)
	}
	m := &consMember{name: name, c: c, nc: nc}
	f.mu.Lock()
	f.running[id] = m
	f.mu.Unlock()
	return m
}

func (f *consFleet) all() []*consMember {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.running))
	for id := range f.running {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]*consMember, len(ids))
	for i, id := range ids {
		out[i] = f.running[id]
	}
	return out
}

func (f *consFleet) drop(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.running, id)
}

// settled: every member's fold is stable with every partition owned by a
// running member, and the helpers together consume every partition.
func (f *consFleet) settled() bool {
	ms := f.all()
	if len(ms) == 0 {
		return false
	}
	consuming := 0
	for _, m := range ms {
		if m.c.Err() != nil {
			return false
		}
		s := m.c.Member().State()
		if s.Phase() != decider.PhaseStable || s.Unowned() != 0 || len(s.LiveMembers()) != len(ms) {
			return false
		}
		st := m.c.Stats()
		if st.Partitions == 0 || st.Partitions != len(m.c.Member().Assigned()) {
			return false
		}
		consuming += st.Partitions
	}
	return consuming == len(f.parts)
}

// waitSettled waits until the fleet settled and then until another 1,000
// messages were processed under the new owners.
func (f *consFleet) waitSettled(what string) {
	f.t.Helper()
	start := time.Now()
	waitFor(f.t, 60*time.Second, what, f.settled)
	took := time.Since(start)
	n := f.log.distinct()
	waitFor(f.t, 60*time.Second, "progress after "+what, func() bool { return f.log.distinct() >= n+1000 })
	f.t.Logf("%s: settled in %v", what, took.Round(time.Millisecond))
}

func TestConsumerFollowsTheFleet(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, pjs := natstest.Connect(t, s.ClientURL())
	if _, err := pjs.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}}); err != nil {
		t.Fatal(err)
	}
	parts := partitions(256)
	log := &consLog{clk: clock.Boot(), n: map[string]map[int]bool{}}
	f := &consFleet{
		t: t, url: s.ClientURL(), group: "consume", parts: parts, log: log,
		running: map[string]*consMember{}, gen: map[string]int{}, crashed: map[string]map[string]uint64{},
		base: parti.Config{
			Group: "consume", Partitions: parts, Timings: testTimings(),
			Window: 300 * time.Millisecond, Grace: 20 * time.Second,
		},
	}
	prod := &consProducer{js: pjs, parts: parts, every: 100 * time.Millisecond, sent: map[string]int{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go prod.run(t)
	defer func() {
		select {
		case <-prod.stop:
		default:
			close(prod.stop)
		}
		<-prod.done
	}()

	// Cold start: three members at once.
	f.base.ExpectedMembers = 3
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); f.join(ctx, fmt.Sprintf("w%d", i)) }()
	}
	wg.Wait()
	f.base.ExpectedMembers = 0
	f.waitSettled("cold start of 3")

	// Scale up.
	f.join(ctx, "w3")
	f.waitSettled("scale-up 3→4")

	// Graceful leave.
	if err := f.running["w1"].c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	f.drop("w1")
	f.waitSettled("w1 left")

	// Rolling restart: close for a restart, rejoin with the same ID.
	for _, m := range f.all() {
		id := m.c.Member().ID()
		if err := m.c.Close(ctx); err != nil {
			t.Fatal(err)
		}
		f.drop(id)
		f.join(ctx, id)
		f.waitSettled("rolling restart of " + id)
	}

	// Crash: the connection goes first (nothing more is acknowledged),
	// then the process; it restarts with the same ID.
	victim := f.running["w2"]
	victim.nc.Close()
	victim.c.Stop()
	// The floors it left: what it handled beyond them is handled again.
	f.mu.Lock()
	f.crashed[victim.name] = readFloors(t, pjs, "PARTI_consume_EVENTS_FLOORS")
	f.mu.Unlock()
	f.drop("w2")
	f.join(ctx, "w2")
	f.waitSettled("crash and restart of w2")

	close(prod.stop)
	<-prod.done
	want := int(prod.total.Load())
	waitFor(t, 60*time.Second, "every published message to be processed", func() bool { return log.distinct() >= want })
	for _, m := range f.all() {
		if err := m.c.Leave(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("published %d messages over %d partitions; %d handler calls", want, len(parts), len(log.recs))
	consCheck(t, log, prod.sent, f.crashed)
}

// readFloors returns every partition's floor (stream sequence) in the
// helper's floor stream.
func readFloors(t *testing.T, js jetstream.JetStream, stream string) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy})
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	n := s.CachedInfo().State.NumSubjects
	out := map[string]uint64{}
	for range n {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Floor uint64 `json:"floor"`
		}
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			t.Fatal(err)
		}
		tok := m.Subject()[strings.LastIndexByte(m.Subject(), '.')+1:]
		part, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			t.Fatal(err)
		}
		out[string(part)] = r.Floor
	}
	return out
}

// consCheck asserts what the issue asks: nothing lost, per-partition order,
// no two handlers of a partition at once, and duplicates only of messages a
// crashed member handled beyond the floors it left (the messages in flight
// on it: handled, their floor not yet written).
func consCheck(t *testing.T, l *consLog, sent map[string]int, crashed map[string]map[string]uint64) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	byPart := map[string][]consRecord{}
	for _, r := range l.recs {
		byPart[r.part] = append(byPart[r.part], r)
	}
	dups := 0
	for part, n := range sent {
		for seq := 1; seq <= n; seq++ {
			if !l.n[part][seq] {
				t.Errorf("partition %s: message %d was never processed", part, seq)
			}
		}
		recs := byPart[part]
		slices.SortStableFunc(recs, func(a, b consRecord) int { return int(a.start - b.start) })
		hi := 0                       // highest number handled so far
		lastOf := map[string]int{}    // member → the last number it handled here
		first := map[int]consRecord{} // number → its first handling
		for i, r := range recs {
			if i > 0 && recs[i-1].end > r.start {
				t.Errorf("partition %s: %s handled %d while %s was still handling %d", part, r.who, r.seq, recs[i-1].who, recs[i-1].seq)
			}
			if l, ok := lastOf[r.who]; ok && r.seq <= l {
				t.Errorf("partition %s: %s handled %d after %d (order broken)", part, r.who, r.seq, l)
			}
			lastOf[r.who] = r.seq
			switch {
			case r.seq == hi+1:
				hi = r.seq
				first[r.seq] = r
			case r.seq <= hi:
				p := first[r.seq]
				floors, wasCrash := crashed[p.who]
				if !wasCrash || p.sseq <= floors[part] {
					t.Errorf("partition %s: message %d (stream seq %d) handled again by %s after %s (not beyond a crashed member's floor %d)", part, r.seq, p.sseq, r.who, p.who, floors[part])
				}
				dups++
			default:
				t.Errorf("partition %s: message %d handled after %d (order broken)", part, r.seq, hi)
			}
		}
	}
	t.Logf("duplicates (messages a crashed member handled beyond its floors): %d", dups)
}
