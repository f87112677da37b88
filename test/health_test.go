package test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/consumer"
	"github.com/parti-io/parti/internal/natstest"
)

// logRecorder is a slog.Handler that keeps every record's level and
// message.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r)
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) has(level slog.Level, prefix string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		if r.Level == level && strings.HasPrefix(r.Message, prefix) {
			return true
		}
	}
	return false
}

func probe(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestHealthFollowsTheLease runs a member on a server that goes away and
// comes back: ready while it holds a lease, not ready (yet live) while its
// heartbeats are not acknowledged, ready again once they are, and neither
// after it closed. The probes answer as Kubernetes expects.
func TestHealthFollowsTheLease(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := natstest.Options(t.TempDir())
	opts.Port = natstest.FreePort(t)
	s := natstest.Start(t, opts)
	_, js := natstest.Connect(t, s.ClientURL())
	logs := &logRecorder{}
	cfg := parti.Config{Group: "health", ID: "h1", Partitions: partitions(8), Timings: testTimings(),
		Window: 100 * time.Millisecond, ExpectedMembers: 1, Grace: 20 * time.Second, Logger: slog.New(logs)}
	m, err := parti.Join(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	srv := httptest.NewServer(parti.HealthHandler(m))
	defer srv.Close()

	waitFor(t, 20*time.Second, "the member to be ready", func() bool { return m.Ready() == nil })
	if code, body := probe(t, srv.URL+"/readyz"); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/readyz = %d %q; want 200 ok", code, body)
	}
	if code, _ := probe(t, srv.URL+"/livez"); code != http.StatusOK {
		t.Fatalf("/livez = %d; want 200", code)
	}
	if code, _ := probe(t, srv.URL+"/metrics"); code != http.StatusNotFound {
		t.Fatalf("/metrics on the health handler = %d; want 404", code)
	}

	s.Shutdown()
	s.WaitForShutdown()
	waitFor(t, 20*time.Second, "the member to be not ready without its server", func() bool {
		return errors.Is(m.Ready(), parti.ErrNotReady)
	})
	if err := m.Live(); err != nil {
		t.Fatalf("Live() = %v while only the server is away; want nil", err)
	}
	code, body := probe(t, srv.URL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "lease") {
		t.Fatalf("/readyz without a server = %d %q; want 503 naming the lease", code, body)
	}
	// The silence is not silent: failing heartbeats warn, the lapse is an
	// error.
	waitFor(t, 10*time.Second, "a warning about failing heartbeats and an error about the lapse", func() bool {
		return logs.has(slog.LevelWarn, "heartbeats keep failing") && logs.has(slog.LevelError, "lease lapsed")
	})

	s2 := natstest.Start(t, opts)
	_ = s2
	waitFor(t, 30*time.Second, "the member to be ready again once the server is back", func() bool {
		return m.Ready() == nil
	})
	waitFor(t, 10*time.Second, "the lease's return logged", func() bool { return logs.has(slog.LevelInfo, "lease back") })

	if err := m.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := m.Live(); !errors.Is(err, parti.ErrNotLive) {
		t.Fatalf("Live() after Close = %v; want ErrNotLive", err)
	}
	if err := m.Ready(); !errors.Is(err, parti.ErrNotReady) {
		t.Fatalf("Ready() after Close = %v; want ErrNotReady", err)
	}
	if code, _ := probe(t, srv.URL+"/livez"); code != http.StatusServiceUnavailable {
		t.Fatalf("/livez after Close = %d; want 503", code)
	}
}

// TestConsumerHealth checks the consumer helper: ready once consuming, not
// live once stopped.
func TestConsumerHealth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "HEV", Subjects: []string{"hev.>"}}); err != nil {
		t.Fatal(err)
	}
	mc := parti.Config{Group: "chealth", ID: "c1", Partitions: partitions(4), Timings: testTimings(),
		Window: 100 * time.Millisecond, ExpectedMembers: 1}
	c, err := consumer.Join(ctx, js, mc, consumer.Config{
		Stream: "HEV", Subject: "hev.{partition}",
		Handler: func(context.Context, *consumer.Msg) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	var hc parti.HealthChecker = c
	waitFor(t, 20*time.Second, "the helper to be ready", func() bool { return hc.Ready() == nil })
	c.Stop()
	if err := hc.Live(); !errors.Is(err, parti.ErrNotLive) {
		t.Fatalf("Live() after Stop = %v; want ErrNotLive", err)
	}
	if err := hc.Ready(); !errors.Is(err, parti.ErrNotReady) {
		t.Fatalf("Ready() after Stop = %v; want ErrNotReady", err)
	}
}
