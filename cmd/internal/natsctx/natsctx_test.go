package natsctx

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/internal/natstest"
)

// TestContextSettingsReachTheConnection writes a nats CLI context with a
// user and password, an inbox prefix and a JetStream domain, against a
// server that requires the first and serves JetStream under the domain:
// only a connection that honours all three works.
func TestContextSettingsReachTheConnection(t *testing.T) {
	opts := natstest.Options(t.TempDir())
	opts.Username, opts.Password = "ops", "s3cret"
	opts.JetStreamDomain = "hub"
	s := natstest.Start(t, opts)

	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	dir := filepath.Join(cfg, "nats", "context")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"url": %q, "user": "ops", "password": "s3cret", "inbox_prefix": "_OPS_INBOX", "jetstream_domain": "hub"}`, s.ClientURL())
	if err := os.WriteFile(filepath.Join(dir, "ops.json"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}

	c, err := Load("ops")
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != s.ClientURL() || c.JSDomain != "hub" {
		t.Fatalf("loaded url %q domain %q", c.URL, c.JSDomain)
	}
	nc, err := nats.Connect(c.URL, c.Options...)
	if err != nil {
		t.Fatalf("connect with the context's options: %v", err)
	}
	defer nc.Close()
	if in := nc.NewRespInbox(); !strings.HasPrefix(in, "_OPS_INBOX.") {
		t.Errorf("inbox %q does not use the context's prefix", in)
	}
	js, err := c.JetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "CTX", Subjects: []string{"ctx.>"}}); err != nil {
		t.Fatalf("JetStream through the context's domain: %v", err)
	}

	// Without the context's user, the server refuses.
	if nc2, err := nats.Connect(c.URL); err == nil {
		nc2.Close()
		t.Fatal("the server accepted a connection without the context's credentials: the test proves nothing")
	}
	if _, err := Load("missing"); err == nil {
		t.Error("loading a missing context succeeded")
	}
}
