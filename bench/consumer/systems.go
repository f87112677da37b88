package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/pcgroups"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/consumer"
	"github.com/parti-io/parti/projection"
)

var (
	partitionCounts = []int{1024, 4096}
	memberCounts    = []int{1, 4, 16}
)

// bench holds the server, the options and the measured series (name →
// one value per run).
type bench struct {
	url      string
	js       jetstream.JetStream
	stderr   io.Writer
	runs     int
	msgs     int
	tailRate int
	tailSecs int
	pcgroups bool
	raw      bool // drain with bare ordered consumers too
	trace    bool // TRACE=1: where the tail's time goes
	tr       *tailTrace
	seq      atomic.Int64 // makes group, consumer and stream names unique

	series map[string][]float64
	order  []string
}

func (b *bench) add(name string, v float64) {
	if _, ok := b.series[name]; !ok {
		b.order = append(b.order, name)
	}
	b.series[name] = append(b.series[name], v)
	fmt.Fprintf(b.stderr, "%s=%s (load %s)\n", name, fmtNum(v), loadAvg())
}

func (b *bench) next() string { return strconv.FormatInt(b.seq.Add(1), 10) }

// sink counts handled messages: the rate is taken from the first handled
// message to the n-th, so that joining and settling are not counted.
type sink struct {
	n     int64
	got   atomic.Int64
	first atomic.Int64 // unix nanos
	// startGot is got when the rate's clock started (restart).
	startGot atomic.Int64
	last     atomic.Int64
	done     chan struct{}
	once     sync.Once

	// lat holds publish → handler of the tail's messages (-1 for those
	// without a publish time), one slot per hit taken with slot: no lock,
	// so that 16 members' handlers do not queue behind one another on the
	// measurement itself (a shared mutex did: a goroutine preempted while
	// holding it stalled every handler of every member).
	slot atomic.Int64
	lat  []int64
}

func newSink(n int) *sink { return &sink{n: int64(n), done: make(chan struct{})} }

// newLatencySink is a sink that also records publish → handler.
func newLatencySink(n int) *sink {
	s := newSink(n)
	s.lat = make([]int64, n)
	return s
}

func (s *sink) hit(pubNanos int64) {
	now := time.Now().UnixNano()
	s.first.CompareAndSwap(0, now)
	if s.lat != nil {
		// Written before got counts it: whoever sees got reach n sees it.
		if i := s.slot.Add(1) - 1; i < int64(len(s.lat)) {
			s.lat[i] = -1
			if pubNanos > 0 {
				s.lat[i] = now - pubNanos
			}
		}
	}
	if s.got.Add(1) >= s.n {
		s.last.CompareAndSwap(0, now)
		s.once.Do(func() { close(s.done) })
	}
}

func (s *sink) wait(ctx context.Context, limit time.Duration) error {
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(limit):
		return fmt.Errorf("%d of %d messages after %v", s.got.Load(), s.n, limit)
	}
}

// restart counts the rate from now, over the messages still to come.
func (s *sink) restart() {
	if s.got.Load() >= s.n {
		return // all handled already: keep the first message's clock
	}
	s.startGot.Store(s.got.Load())
	s.first.Store(time.Now().UnixNano())
}

func (s *sink) rate() float64 {
	return float64(s.n-s.startGot.Load()) / (time.Duration(s.last.Load() - s.first.Load())).Seconds()
}

func (s *sink) p99() time.Duration { return s.quantile(99) }

// quantile returns the q-th percentile of the latencies.
func (s *sink) quantile(q int) time.Duration {
	var v []time.Duration
	for _, l := range s.lat[:min(s.got.Load(), int64(len(s.lat)))] {
		if l >= 0 {
			v = append(v, time.Duration(l))
		}
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[min(len(v)-1, len(v)*q/100)]
}

// pubTime reads the publish time a tail message carries ("<unix nanos>");
// 0 for the backlog's and warm-up's bodies (small counters).
func pubTime(data []byte) int64 {
	v, _ := strconv.ParseInt(string(data), 10, 64)
	if v < 1e18 {
		return 0
	}
	return v
}

// drains measures every system at every member and partition count over
// one shared backlog per partition count.
func (b *bench) drains(ctx context.Context) error {
	for _, P := range partitionCounts {
		stream := "DRAIN" + strconv.Itoa(P)
		prefix := "d" + strconv.Itoa(P) + "."
		if _, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{prefix + "*"}, Storage: jetstream.FileStorage}); err != nil {
			return err
		}
		parts := partitionIDs(P)
		if err := publishBacklog(ctx, b.js, prefix, parts, b.msgs); err != nil {
			return err
		}
		for r := 0; r < b.runs; r++ {
			for _, ack := range []bool{true, false} {
				rate, err := b.plainDrain(ctx, stream, ack)
				if err != nil {
					return fmt.Errorf("plain drain over %d partitions: %w", P, err)
				}
				name := fmt.Sprintf("drain_plain_%d", P)
				if !ack {
					name = fmt.Sprintf("drain_plain_noack_%d", P)
				}
				b.add(name, rate)
			}
			// The primitive's own scaling, for reference: M ack-free
			// ordered consumers, one connection each, the partitions
			// dealt over them, no helper.
			for _, M := range memberCounts {
				if !b.raw {
					break
				}
				rate, err := rawDrain(ctx, b.js, b.url, stream, dealt(prefix, parts, M), b.msgs)
				if err != nil {
					return fmt.Errorf("raw drain, %d consumers over %d partitions: %w", M, P, err)
				}
				b.add(fmt.Sprintf("drain_raw_%d_m%d", P, M), rate)
			}
			for _, M := range memberCounts {
				rate, _, err := b.oursRun(ctx, stream, prefix, parts, M, b.msgs, nil)
				if err != nil {
					return fmt.Errorf("consumer.Join drain, %d members over %d partitions: %w", M, P, err)
				}
				b.add(fmt.Sprintf("drain_ours_%d_m%d", P, M), rate)
				if b.pcgroups {
					rate, err := b.pcgroupsRun(ctx, stream, prefix, P, M, b.msgs, nil)
					if err != nil {
						return fmt.Errorf("pcgroups drain, %d members over %d partitions: %w", M, P, err)
					}
					b.add(fmt.Sprintf("drain_pcgroups_%d_m%d", P, M), rate)
				}
			}
		}
		if err := b.js.DeleteStream(ctx, stream); err != nil {
			return err
		}
	}
	return nil
}

// plainDrain reads the whole stream through one pull consumer without a
// filter: acknowledging each message (a plain at-least-once consumer), or
// acknowledgement-free.
func (b *bench) plainDrain(ctx context.Context, stream string, ack bool) (float64, error) {
	nc, js, err := b.connect()
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	cfg := jetstream.ConsumerConfig{Name: "plain" + b.next(), AckPolicy: jetstream.AckExplicitPolicy, InactiveThreshold: time.Minute}
	if !ack {
		cfg.AckPolicy = jetstream.AckNonePolicy
	}
	c, err := js.CreateConsumer(ctx, stream, cfg)
	if err != nil {
		return 0, err
	}
	defer js.DeleteConsumer(context.Background(), stream, cfg.Name)
	s := newSink(b.msgs)
	c0 := procCPU()
	cc, err := c.Consume(func(m jetstream.Msg) {
		if ack {
			_ = m.Ack()
		}
		s.hit(0)
	})
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	if err := s.wait(ctx, 5*time.Minute); err != nil {
		return 0, err
	}
	if b.trace {
		fmt.Fprintf(b.stderr, "cpu plain (ack %v): %.2f µs/msg\n", ack, float64((procCPU()-c0).Microseconds())/float64(b.msgs))
	}
	return s.rate(), nil
}

func (b *bench) connect() (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(b.url, nats.MaxReconnects(-1))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// oursRun starts M members of a fresh group with the helper (one
// connection each), waits until sink has n messages, and returns the rate
// and the floor writes per handled message counted from the moment every
// partition was consumed (before is called then, if set: the tail
// publishes from it).
func (b *bench) oursRun(ctx context.Context, stream, prefix string, parts []string, M, n int, before func(*sink) error) (float64, float64, error) {
	group := "g" + b.next()
	s := newSink(n)
	if before != nil {
		s = newLatencySink(n)
	}
	var members []*consumer.Consumer
	var conns []*nats.Conn
	defer func() {
		left := make(chan struct{})
		go func() {
			var wg sync.WaitGroup
			for _, c := range members {
				wg.Add(1)
				go func() {
					defer wg.Done()
					lctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					_ = c.Leave(lctx)
				}()
			}
			wg.Wait()
			close(left)
		}()
		select {
		case <-left:
		case <-time.After(time.Minute):
			fmt.Fprintln(b.stderr, "  members did not leave within a minute; going on")
		}
		for _, nc := range conns {
			nc.Close()
		}
		_ = b.js.DeleteStream(context.Background(), projection.StreamName(group))
		_ = b.js.DeleteStream(context.Background(), "PARTI_"+group+"_"+stream+"_FLOORS")
	}()
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, M)
	// With TRACE, when each member handled its last message (unix nanos).
	lastAt := make([]atomic.Int64, M)
	joinT0 := time.Now()
	for i := range M {
		nc, js, err := b.connect()
		if err != nil {
			return 0, 0, err
		}
		conns = append(conns, nc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Production timings: a lease survives a loaded machine.
			pc := parti.Production(group)
			pc.Partitions = parts
			pc.ExpectedMembers = M
			pc.Logger = slog.New(slog.DiscardHandler)
			c, err := consumer.Join(ctx, js, pc, consumer.Config{
				Stream: stream, Subject: prefix + consumer.Placeholder,
				Logger:         slog.New(slog.DiscardHandler),
				CommitInterval: envDur("OURS_COMMIT"), // 0: the default
				Handler: func(_ context.Context, m *consumer.Msg) error {
					if before != nil {
						pub := pubTime(m.Data)
						s.hit(pub)
						b.tr.add(i, m.Partition, pub, m.Time, time.Now().UnixNano())
					} else {
						s.hit(0)
						if b.trace {
							lastAt[i].Store(time.Now().UnixNano())
						}
					}
					return nil
				},
			})
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			members = append(members, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return 0, 0, err
	default:
	}
	writes := func() uint64 {
		var w uint64
		for _, c := range members {
			w += c.Stats().FloorWrites
		}
		return w
	}
	var w0 uint64
	var c0 time.Duration
	{
		deadline := time.Now().Add(5 * time.Minute)
		for {
			total := 0
			for _, c := range members {
				total += c.Stats().Partitions
			}
			if total == len(parts) {
				if b.trace {
					fmt.Fprintf(b.stderr, "joined: every partition consumed %d ms after the Joins began\n", time.Since(joinT0).Milliseconds())
				}
				break
			}
			if time.Now().After(deadline) {
				return 0, 0, fmt.Errorf("%d of %d partitions consumed after 5 minutes", total, len(parts))
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The drain rate counts from here: reading and claiming the
		// partitions' floors at the start is a cost of joining, which
		// the other systems pay elsewhere (pcgroups: sourcing).
		s.restart()
		c0 = procCPU()
		w0 = writes()
		if before != nil {
			if err := before(s); err != nil {
				return 0, 0, err
			}
		}
	}
	if err := s.wait(ctx, 5*time.Minute); err != nil {
		return 0, 0, err
	}
	if b.trace && before == nil {
		// CPU of the whole process (the server's included) per message:
		// steadier than the rate on a machine shared with other jobs.
		fmt.Fprintf(b.stderr, "cpu ours %d members: %.2f µs/msg\n", M, float64((procCPU()-c0).Microseconds())/float64(n-int(s.startGot.Load())))
		// A drain ends with its slowest member: when each member was done,
		// in ms after the rate's clock started, and how much was handled
		// before it started.
		var ends []int64
		for i := range lastAt {
			ends = append(ends, (lastAt[i].Load()-s.first.Load())/1e6)
		}
		slices.Sort(ends)
		fmt.Fprintf(b.stderr, "members done at (ms after the clock started) %v; %d of %d handled before it\n", ends, s.startGot.Load(), n)
	}
	// The floors of the last messages follow within a commit interval.
	time.Sleep(100 * time.Millisecond)
	var st consumer.Stats
	for _, c := range members {
		x := c.Stats()
		st.Reconfigs += x.Reconfigs
		st.FloorWrites += x.FloorWrites
		st.Errors += x.Errors
	}
	fmt.Fprintf(b.stderr, "  %d members: %d consumers started, %d floor writes, %d errors\n", M, st.Reconfigs, st.FloorWrites, st.Errors)
	return s.rate(), float64(writes()-w0) / float64(n), nil
}

// pcgroupsRun creates an elastic consumer group over P partitions of the
// stream (pcgroups' own partitions: its work-queue stream sourced from the
// stream), starts M members (one connection each, explicit acks), and
// waits until sink has n messages.
func (b *bench) pcgroupsRun(ctx context.Context, stream, prefix string, P, M, n int, before func(*sink) error) (float64, error) {
	group := "cg" + b.next()
	if _, err := pcgroups.CreateElastic(ctx, b.js, stream, group, uint(P),
		[]pcgroups.PartitioningFilter{{Filter: prefix + "*", PartitioningWildcards: []int{1}}}, 0, 0); err != nil {
		return 0, err
	}
	defer func() { _ = pcgroups.DeleteElastic(context.Background(), b.js, stream, group) }()
	names := make([]string, M)
	for i := range names {
		names[i] = "m" + strconv.Itoa(i)
	}
	s := newSink(n)
	if before != nil {
		s = newLatencySink(n)
	}
	var insts []pcgroups.ConsumerGroupConsumeContext
	defer func() {
		for _, in := range insts {
			in.Stop()
		}
	}()
	for _, name := range names {
		nc, js, err := b.connect()
		if err != nil {
			return 0, err
		}
		defer nc.Close()
		in, err := pcgroups.ElasticConsume(ctx, js, stream, group, name, func(m jetstream.Msg) {
			_ = m.Ack()
			if before != nil {
				s.hit(pubTime(m.Data()))
			} else {
				s.hit(0)
			}
		}, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy, AckWait: 5 * time.Second})
		if err != nil {
			return 0, err
		}
		insts = append(insts, in)
	}
	if _, err := pcgroups.AddMembers(ctx, b.js, stream, group, names); err != nil {
		return 0, err
	}
	if before != nil {
		// Every member's consumer exists once the group's stream has M.
		deadline := time.Now().Add(time.Minute)
		for {
			st, err := b.js.Stream(ctx, stream+"-"+group)
			if err == nil && st.CachedInfo().State.Consumers >= M {
				break
			}
			if time.Now().After(deadline) {
				return 0, errors.New("pcgroups members not consuming after a minute")
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Second) // pinning settles
		if err := before(s); err != nil {
			return 0, err
		}
	}
	if err := s.wait(ctx, 5*time.Minute); err != nil {
		return 0, err
	}
	return s.rate(), nil
}

// tails publishes at tailRate for tailSecs into a fresh stream per run and
// system (1,024 partitions, 16 members) and measures publish → handler.
func (b *bench) tails(ctx context.Context) error {
	const P, M = 1024, 16
	parts := partitionIDs(P)
	// A warm-up message per partition first, all handled before the
	// measured messages are published (it carries no publish time, so it
	// counts for no latency): every system is then consuming everything.
	n := P + b.tailRate*b.tailSecs
	for r := 0; r < b.runs; r++ {
		type system struct {
			name string
			run  func(stream, prefix string, before func(*sink) error) error
		}
		systems := []system{
			{"plain", func(stream, prefix string, before func(*sink) error) error {
				return b.plainTail(ctx, stream, n, before)
			}},
			{"ours", func(stream, prefix string, before func(*sink) error) error {
				_, wpm, err := b.oursRun(ctx, stream, prefix, parts, M, n, before)
				if err == nil {
					b.add("floor_writes_per_msg", wpm)
				}
				return err
			}},
		}
		if b.pcgroups {
			systems = append(systems, system{"pcgroups", func(stream, prefix string, before func(*sink) error) error {
				_, err := b.pcgroupsRun(ctx, stream, prefix, P, M, n, before)
				return err
			}})
		}
		for _, sys := range systems {
			id := b.next()
			stream, prefix := "TAIL"+id, "t"+id+"."
			if _, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{prefix + "*"}, Storage: jetstream.FileStorage}); err != nil {
				return err
			}
			var s *sink
			if b.trace {
				b.tr = newTailTrace(n)
			}
			err := sys.run(stream, prefix, func(got *sink) error {
				s = got
				if err := publishBacklog(ctx, b.js, prefix, parts, P); err != nil {
					return err
				}
				deadline := time.Now().Add(2 * time.Minute)
				for s.got.Load() < int64(P) {
					if time.Now().After(deadline) {
						return fmt.Errorf("warm-up: %d of %d handled after 2 minutes", s.got.Load(), P)
					}
					time.Sleep(20 * time.Millisecond)
				}
				c0, w0 := procCPU(), time.Now()
				if f := os.Getenv("TAIL_PROFILE"); f != "" {
					w, _ := os.Create(f + "." + sys.name)
					_ = pprof.StartCPUProfile(w)
					defer pprof.StopCPUProfile()
					runtime.SetMutexProfileFraction(5)
					defer func() {
						m, _ := os.Create(f + "." + sys.name + ".mutex")
						_ = pprof.Lookup("mutex").WriteTo(m, 0)
						m.Close()
						runtime.SetMutexProfileFraction(0)
					}()
				}
				err := b.publishAt(ctx, prefix, parts, n-P)
				if err == nil {
					err = s.wait(ctx, 5*time.Minute)
				}
				if b.trace {
					fmt.Fprintf(b.stderr, "cpu %s: %.2f s over %.2f s of publishing and handling\n", sys.name, (procCPU() - c0).Seconds(), time.Since(w0).Seconds())
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("tail of %s: %w", sys.name, err)
			}
			b.add("tail_p99_ms_"+sys.name, float64(s.p99().Microseconds())/1000)
			b.add("tail_p50_ms_"+sys.name, float64(s.quantile(50).Microseconds())/1000)
			if b.tr != nil {
				b.tr.report(b.stderr, sys.name)
				b.tr = nil
			}
			if err := b.js.DeleteStream(ctx, stream); err != nil {
				return err
			}
		}
	}
	return nil
}

// plainTail: one pull consumer without a filter, new messages only,
// acknowledging each.
func (b *bench) plainTail(ctx context.Context, stream string, n int, before func(*sink) error) error {
	nc, js, err := b.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	c, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{Name: "plain", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return err
	}
	s := newLatencySink(n)
	cc, err := c.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		pub := pubTime(m.Data())
		s.hit(pub)
		if b.tr != nil {
			if meta, err := m.Metadata(); err == nil {
				b.tr.add(0, "", pub, meta.Timestamp, time.Now().UnixNano())
			}
		}
	})
	if err != nil {
		return err
	}
	defer cc.Stop()
	if err := before(s); err != nil {
		return err
	}
	return s.wait(ctx, 5*time.Minute)
}

// publishAt publishes n messages round-robin over the partitions at
// tailRate, in 5 ms steps, each carrying its publish time.
func (b *bench) publishAt(ctx context.Context, prefix string, parts []string, n int) error {
	nc, js, err := b.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	const step = 5 * time.Millisecond
	perStep := max(1, b.tailRate*int(step)/int(time.Second))
	t := time.NewTicker(step)
	defer t.Stop()
	for i := 0; i < n; {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		for k := 0; k < perStep && i < n; k, i = k+1, i+1 {
			body := strconv.FormatInt(time.Now().UnixNano(), 10)
			if _, err := js.PublishAsync(prefix+parts[(i*7919)%len(parts)], []byte(body), jetstream.WithStallWait(time.Minute)); err != nil {
				return err
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return errors.New("tail publish did not complete")
	}
	return nil
}

func envDur(k string) time.Duration { d, _ := time.ParseDuration(os.Getenv(k)); return d }
