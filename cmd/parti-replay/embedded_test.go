package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/replay"
	"github.com/parti-io/parti/replay/replaytest"
)

// exportSource exports everything src holds.
func exportSource(t *testing.T, src replay.Source) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := replay.NewWriter(&buf)
	if err := src.Scan(t.Context(), replay.ScanOptions{}, w.Write); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// treeDigest hashes every file under dir with its path, size, mode and
// modification time.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := d.Info()
		rel, _ := filepath.Rel(dir, path)
		h.Write([]byte(rel + fi.Mode().String() + fi.ModTime().String()))
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(path)
			h.Write(b)
		}
		return nil
	})
	return string(h.Sum(nil))
}

func TestEmbeddedReadsACopy(t *testing.T) {
	dir := t.TempDir()
	var live []byte
	func() {
		// A server that stops at the end of this sub-scope: its store
		// is then a stopped server's store.
		srvDir := filepath.Join(dir, "store")
		opts := natstest.Options(srvDir)
		srv, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go srv.Start()
		defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatal("server not ready")
		}
		_, js := natstest.Connect(t, srv.ClientURL())
		if _, err := projection.Provision(t.Context(), js, projection.StreamConfig{Group: "orders"}); err != nil {
			t.Fatal(err)
		}
		subj, _ := events.NewSubjects("orders")
		b, _ := replaytest.NewBuilder("orders", &replaytest.AppenderEmitter{Ctx: t.Context(), App: projection.NewAppender(js, subj), JS: js})
		replaytest.Scenario(b)
		if b.Err() != nil {
			t.Fatal(b.Err())
		}
		src, err := replay.NewStreamSource(t.Context(), js, "orders")
		if err != nil {
			t.Fatal(err)
		}
		live = exportSource(t, src)
	}()
	store := filepath.Join(dir, "store")
	before := treeDigest(t, store)
	for _, d := range []string{store, filepath.Join(store, "jetstream")} {
		c, err := startEmbedded(t.Context(), d, 0)
		if err != nil {
			t.Fatal(err)
		}
		src, err := c.Source(t.Context(), "orders")
		if err != nil {
			t.Fatal(err)
		}
		got := exportSource(t, src)
		c.Close()
		if !bytes.Equal(got, live) {
			t.Fatalf("the embedded copy of %s exports differently:\n%s", d, cmp.Diff(string(live), string(got)))
		}
	}
	if after := treeDigest(t, store); after != before {
		t.Fatal("the original store changed")
	}
	if _, err := startEmbedded(t.Context(), t.TempDir(), 0); !errors.Is(err, errNotAStore) {
		t.Fatalf("not a store: %v", err)
	}
}

// TestReplayLibraryDoesNotLinkTheServer: the embedded-store mode is the
// command's; a program importing replay does not link nats-server.
func TestReplayLibraryDoesNotLinkTheServer(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			t.Skip("no go tool to list dependencies with")
		}
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/parti-io/parti/replay").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !strings.Contains(string(out), "github.com/nats-io/nats.go") {
		t.Fatalf("go list -deps listed %d packages, without nats.go: the check checks nothing\n%s", len(deps), out)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/nats-io/nats-server") {
			t.Fatalf("package replay links %s", d)
		}
	}
}
