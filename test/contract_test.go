package test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/internal/contracttest"
	"github.com/parti-io/parti/internal/natstest"
)

// memberDriver runs the contract cases on parti.Members against a real
// server.
type memberDriver struct {
	js    jetstream.JetStream
	base  parti.Config
	r     *contracttest.Recorder
	mu    sync.Mutex
	live  map[string]*parti.Member // by ID
	names map[string]string        // the recorder name of each ID's process
}

func (d *memberDriver) Join(t *testing.T, id, name string) {
	t.Helper()
	cfg := d.base
	cfg.ID, cfg.Handler = id, d.r.Handler(name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := parti.Join(ctx, d.js, cfg)
	if err != nil {
		t.Fatalf("join %s: %v", id, err)
	}
	t.Cleanup(m.Stop)
	d.mu.Lock()
	d.live[id], d.names[id] = m, name
	d.mu.Unlock()
}

func (d *memberDriver) Settle(t *testing.T) {
	t.Helper()
	waitFor(t, time.Minute, "the group to settle and every handler to hold what its member acts on", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		for id, m := range d.live {
			if !m.GroupSettled(len(d.live)) {
				return false
			}
			var acting []string
			for _, a := range m.Assigned() {
				acting = append(acting, a.Partition)
			}
			slices.Sort(acting)
			if !slices.Equal(acting, d.r.Held(d.names[id])) || len(acting) != len(m.State().Owned(m.ID(), m.Incarnation())) {
				return false
			}
		}
		return true
	})
}

func (d *memberDriver) end(t *testing.T, id string, f func(*parti.Member, context.Context) error) {
	t.Helper()
	d.mu.Lock()
	m := d.live[id]
	delete(d.live, id)
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f(m, ctx); err != nil {
		t.Fatalf("%s: %v", id, err)
	}
}

func (d *memberDriver) Leave(t *testing.T, id string) {
	d.end(t, id, func(m *parti.Member, ctx context.Context) error { return m.Leave(ctx) })
}

func (d *memberDriver) Close(t *testing.T, id string) {
	d.end(t, id, func(m *parti.Member, ctx context.Context) error { return m.Close(ctx) })
}

func (d *memberDriver) SetPartitions(t *testing.T, id string, ids []string) {
	t.Helper()
	d.mu.Lock()
	m := d.live[id]
	d.mu.Unlock()
	if err := m.SetPartitions(ids, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the new declaration in the fold", func() bool { return slices.Equal(m.State().Partitions, ids) })
}

// Issue 11: parti.Member passes the handler contract table that partitest
// passes (internal/contracttest): the same calls, order and reasons.
func TestContractTable(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	n := 0
	contracttest.Run(t, func(t *testing.T, c contracttest.Case, r *contracttest.Recorder) contracttest.Driver {
		n++
		return &memberDriver{
			js: js, r: r, live: map[string]*parti.Member{}, names: map[string]string{},
			base: parti.Config{
				Group: "contract" + string(rune('a'+n)), Partitions: contracttest.Partitions(c.Partitions),
				Timings: testTimings(), Window: 300 * time.Millisecond, Grace: 20 * time.Second,
			},
		}
	})
}
