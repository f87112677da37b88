//go:build unix

package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parti-io/parti/internal/natstest"
)

// Issue 11, item 1: README's "Embedding" block, verbatim, is the body of a
// program's run function. The program gets SIGTERM: it must close (the
// close is in the log, nobody expires it), and started again it takes its
// partitions back with no move.

// readmeEmbedProgram is the program around the block; the block uses js,
// hostname, tenants, work and waitUntilStopped.
const readmeEmbedProgram = `package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/events"
)

var (
	hostname = os.Getenv("EMBED_ID")
	tenants  = strings.Split(os.Getenv("EMBED_TENANTS"), ",")
)

func work(ctx context.Context, partition string, token events.Token) {
	fmt.Println("+", partition, token)
	<-ctx.Done()
}

func waitUntilStopped(partition string) { fmt.Println("-", partition) }

func main() {
	nc, err := nats.Connect(os.Getenv("EMBED_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	js, _ := jetstream.New(nc)
	if err := run(js); err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		os.Exit(1)
	}
	fmt.Println("closed")
}

func run(js jetstream.JetStream) error {
%s
}
`

// readmeBlock returns the Go block of README's "Embedding" section.
func readmeBlock(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "## Embedding")
	if i < 0 {
		t.Fatal("README has no Embedding section")
	}
	s = s[i:]
	start := strings.Index(s, "```go\n")
	if start < 0 {
		t.Fatal("README's Embedding section has no Go block")
	}
	s = s[start+len("```go\n"):]
	end := strings.Index(s, "```")
	if end < 0 {
		t.Fatal("README's Embedding block does not end")
	}
	return s[:end]
}

// buildReadmeProgram builds the program with the README block through an
// overlay: nothing is written into the repository.
func buildReadmeProgram(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(fmt.Sprintf(readmeEmbedProgram, readmeBlock(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(root, "test", "readmeembedprogram")
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{filepath.Join(pkg, "main.go"): src}})
	ov := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ov, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "embed")
	cmd := exec.Command("go", "build", "-overlay", ov, "-o", bin, "./readmeembedprogram")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building README's embedding block: %v\n%s\nprogram:\n%s", err, out, fmt.Sprintf(readmeEmbedProgram, readmeBlock(t)))
	}
	return bin
}

func TestReadmeEmbeddingClosesOnSIGTERM(t *testing.T) {
	bin := buildReadmeProgram(t)
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	const nparts = 6
	var tenants []string
	for i := range nparts {
		tenants = append(tenants, fmt.Sprintf("t-%d", i))
	}
	start := func() *fleetProc {
		p := &fleetProc{cmd: exec.Command(bin), exit: make(chan error, 1)}
		p.cmd.Env = append(os.Environ(), "EMBED_URL="+s.ClientURL(), "EMBED_ID=host-1", "EMBED_TENANTS="+strings.Join(tenants, ","))
		startProc(t, p, "README embedding program")
		return p
	}
	p := start()
	waitFor(t, 60*time.Second, "the program to work on every tenant", func() bool { return p.count("+ t-") == nparts })
	if err := p.terminate(t); err != nil {
		t.Fatalf("the program exited with %v after SIGTERM, want 0", err)
	}
	if p.count("closed") != 1 || p.count("- t-") != nparts {
		t.Fatal("the program did not revoke every tenant and close")
	}
	if sum := summarize(groupLog(t, js, "orders"), "host-1"); sum.closing != 1 || sum.removed != 0 || sum.verdicts != 0 {
		t.Fatalf("log after SIGTERM: %+v, want one close and no expiry", sum)
	}
	p2 := start()
	waitFor(t, 60*time.Second, "the restarted program to work on every tenant", func() bool { return p2.count("+ t-") == nparts })
	if sum := summarize(groupLog(t, js, "orders"), "host-1"); sum.removed != 0 || sum.verdicts != 0 || sum.graceEnded != 0 || sum.movesAfterClose != 0 {
		t.Fatalf("log after the restart: %+v, want no expiry, no grace end, no move", sum)
	}
	if err := p2.terminate(t); err != nil {
		t.Fatalf("the restarted program exited with %v, want 0", err)
	}
}
