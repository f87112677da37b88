package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parti-io/parti/internal/natstest"
)

// lines is an io.Writer that hands each written line to a channel.
type lines struct {
	w  *io.PipeWriter
	ch chan string
}

func newLines() *lines {
	r, w := io.Pipe()
	l := &lines{w: w, ch: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l.ch <- sc.Text()
		}
		close(l.ch)
	}()
	return l
}

func (l *lines) Write(p []byte) (int, error) { return l.w.Write(p) }

// await returns the first line containing s, or fails at the deadline.
func (l *lines) await(t *testing.T, s string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-l.ch:
			if !ok {
				t.Fatalf("output ended before %q", s)
			}
			if strings.Contains(line, s) {
				return line
			}
		case <-deadline:
			t.Fatalf("no %q within %v", s, timeout)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
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

// TestWorkerServesMetricsAndProbes runs `fleet worker --http` against an
// embedded server and scrapes what it serves: the member's Prometheus
// series, and probes that say live and ready once it holds its partitions.
func TestWorkerServesMetricsAndProbes(t *testing.T) {
	s := natstest.Server(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newLines()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"worker", "--id", "worker-1", "--server", s.ClientURL(),
			"--partitions", "8", "--http", "127.0.0.1:0"}, out, io.Discard)
	}()
	line := out.await(t, "serving /metrics", 30*time.Second)
	base := line[strings.Index(line, "http://"):]

	var code int
	waitFor(t, 30*time.Second, func() bool {
		code, _ = get(t, base+"/readyz")
		return code == http.StatusOK
	}, func() string { return fmt.Sprintf("/readyz still %d after 30s", code) })
	if code, _ := get(t, base+"/livez"); code != http.StatusOK {
		t.Fatalf("/livez = %d; want 200", code)
	}
	var body string
	waitFor(t, 30*time.Second, func() bool {
		_, body = get(t, base+"/metrics")
		return strings.Contains(body, `parti_owned_partitions{group="fleet",member="worker-1"} 8`) &&
			strings.Contains(body, "parti_heartbeats_total") && strings.Contains(body, "go_goroutines")
	}, func() string { return "/metrics lacks the member's series after 30s:\n" + body })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("worker: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not stop after its context ended")
	}
}
