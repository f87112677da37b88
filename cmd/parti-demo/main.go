// Command parti-demo narrates a parti group's life on an embedded JetStream
// server: cold start, scale-up, a crash, a rolling restart (zero moves) and a
// graceful leave, with a table after every step, then audits the whole
// history from the log.
//
//	make demo        # or: go run ./cmd/parti-demo
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/consumer"
	"github.com/parti-io/parti/internal/embedded"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "parti-demo:", err)
		os.Exit(1)
	}
}

type demo struct {
	out     io.Writer
	js      jetstream.JetStream
	group   string
	parts   []string
	mu      sync.Mutex
	members map[string]*parti.Member
	workers map[string]*consumer.Consumer
	holder  map[string]string
	traffic *traffic
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("parti-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".parti-demo", "store directory of the embedded server (wiped first)")
	nparts := fs.Int("partitions", 256, "partitions")
	if err := fs.Parse(args); err != nil {
		return err
	}
	began := time.Now()
	if err := os.RemoveAll(*dir); err != nil {
		return err
	}
	abs, _ := filepath.Abs(*dir)
	local, err := embedded.StartLocal(abs)
	if err != nil {
		return err
	}
	defer local.Close()
	js, srv := local.JS, local.Server
	d := &demo{out: stdout, js: js, group: "demo", members: map[string]*parti.Member{}, workers: map[string]*consumer.Consumer{}, holder: map[string]string{}}
	for i := range *nparts {
		d.parts = append(d.parts, fmt.Sprintf("tenant-%03d", i))
	}
	fmt.Fprintf(stdout, "parti demo: embedded JetStream at %s (store %s), group %q, %d partitions, fast profile (heartbeat 250ms, expiry 1.5s)\n\n",
		srv.ClientURL(), abs, d.group, len(d.parts))
	tr, err := startTraffic(ctx, js, d.parts)
	if err != nil {
		return err
	}
	d.traffic = tr
	defer tr.stop()
	fmt.Fprintf(stdout, "a producer publishes sequence-numbered orders to ORDERS (orders.<tenant>); every worker consumes exactly its tenants with the consumer helper\n\n")

	step := func(title string, act func() error) error {
		before := d.owners()
		t0 := time.Now()
		if err := act(); err != nil {
			return fmt.Errorf("%s: %w", title, err)
		}
		if err := d.waitSettled(ctx, 60*time.Second); err != nil {
			return fmt.Errorf("%s: %w", title, err)
		}
		took := time.Since(t0)
		d.table(title, before, d.owners(), took)
		return nil
	}
	if err := step("1. cold start: 4 workers join", func() error {
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for i := range 4 {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- d.join(ctx, fmt.Sprintf("worker-%d", i), 4) }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := step("2. scale-up: worker-4 joins (only its share moves)", func() error { return d.join(ctx, "worker-4", 0) }); err != nil {
		return err
	}
	if err := step("3. crash: worker-2 dies without a word (taken over after the 1.5s expiry)", func() error {
		d.mu.Lock()
		w := d.workers["worker-2"]
		delete(d.members, "worker-2")
		delete(d.workers, "worker-2")
		d.mu.Unlock()
		w.Stop()
		d.forget("worker-2")
		return nil
	}); err != nil {
		return err
	}
	if err := step("4. rolling restart: every worker closes and rejoins with its ID (zero moves)", func() error {
		for _, id := range d.ids() {
			d.mu.Lock()
			w := d.workers[id]
			d.mu.Unlock()
			if err := w.Close(ctx); err != nil {
				return err
			}
			d.mu.Lock()
			delete(d.members, id)
			delete(d.workers, id)
			d.mu.Unlock()
			if err := d.join(ctx, id, 0); err != nil {
				return err
			}
			if err := d.waitSettled(ctx, 60*time.Second); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := step("5. graceful leave: worker-1 hands its partitions off", func() error {
		d.mu.Lock()
		w := d.workers["worker-1"]
		delete(d.members, "worker-1")
		delete(d.workers, "worker-1")
		d.mu.Unlock()
		return w.Leave(ctx)
	}); err != nil {
		return err
	}
	if err := d.traffic.report(ctx, stdout); err != nil {
		return err
	}
	text, verdictOK, err := audit(ctx, d)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	fmt.Fprintln(stdout, text)
	for _, id := range d.ids() {
		d.mu.Lock()
		w := d.workers[id]
		d.mu.Unlock()
		_ = w.Leave(ctx)
	}
	fmt.Fprintf(stdout, "\ndemo finished in %v\n", time.Since(began).Round(10*time.Millisecond))
	fmt.Fprintf(stdout, "follow a live group:  go run ./cmd/parti-replay tail --server %s --group %s\n", "nats://HOST:PORT", d.group)
	if !verdictOK {
		return fmt.Errorf("the audit found violations")
	}
	return nil
}

func (d *demo) join(ctx context.Context, id string, expected int) error {
	cfg := parti.Fast(d.group)
	cfg.ID = id
	cfg.Partitions = d.parts
	cfg.ExpectedMembers = expected
	cfg.Window = 200 * time.Millisecond
	cfg.Grace = 10 * time.Second
	cfg.Handler = parti.HandlerFuncs{
		OnAssigned: func(a parti.Assignment) {
			d.mu.Lock()
			d.holder[a.Partition] = id
			d.mu.Unlock()
		},
		OnRevoked: func(a parti.Assignment, why parti.RevokeReason) {
			d.mu.Lock()
			if d.holder[a.Partition] == id {
				delete(d.holder, a.Partition)
			}
			d.mu.Unlock()
		},
	}
	w, err := consumer.Join(ctx, d.js, cfg, consumer.Config{
		Stream:  "ORDERS",
		Subject: "orders.{partition}",
		Handler: func(ctx context.Context, m *consumer.Msg) error {
			d.traffic.processed(id, m.Partition, m.Data)
			return nil
		},
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.members[id] = w.Member()
	d.workers[id] = w
	d.mu.Unlock()
	return nil
}

// forget drops a crashed member's holdings from the demo's view (a crashed
// process tells nobody).
func (d *demo) forget(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for p, h := range d.holder {
		if h == id {
			delete(d.holder, p)
		}
	}
}

func (d *demo) ids() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := make([]string, 0, len(d.members))
	for id := range d.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (d *demo) owners() map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]string, len(d.holder))
	for p, h := range d.holder {
		out[p] = h
	}
	return out
}

func (d *demo) settled() bool {
	d.mu.Lock()
	n := len(d.holder)
	ms := make([]*parti.Member, 0, len(d.members))
	for _, m := range d.members {
		ms = append(ms, m)
	}
	d.mu.Unlock()
	if n != len(d.parts) {
		return false
	}
	for _, m := range ms {
		if !m.IsLeader() {
			continue
		}
		return m.GroupSettled(len(ms))
	}
	return false
}

func (d *demo) waitSettled(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !d.settled() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the group did not settle: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

func (d *demo) table(title string, before, after map[string]string, took time.Duration) {
	fmt.Fprintf(d.out, "%s\n", title)
	tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  member\tincarnation\towns\trole")
	counts := map[string]int{}
	for _, h := range d.owners() {
		counts[h]++
	}
	d.mu.Lock()
	ids := make([]string, 0, len(d.members))
	for id := range d.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := d.members[id]
		role := ""
		if m.IsLeader() {
			role = "leader"
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\n", id, m.Incarnation(), counts[id], role)
	}
	d.mu.Unlock()
	tw.Flush()
	fmt.Fprintf(d.out, "  moved: %d   newly owned: %d   time: %v\n\n", moved(before, after), len(after)-len(before)+lost(before, after), took.Round(time.Millisecond))
}

// moved counts partitions that had an owner before and another one after.
func moved(a, b map[string]string) int {
	n := 0
	for p, o := range a {
		if nb, ok := b[p]; ok && nb != o {
			n++
		}
	}
	return n
}

// lost counts partitions owned before and by nobody after.
func lost(a, b map[string]string) int {
	n := 0
	for p := range a {
		if _, ok := b[p]; !ok {
			n++
		}
	}
	return n
}
