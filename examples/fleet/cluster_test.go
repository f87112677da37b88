package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parti-io/parti/internal/waitfor"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/internal/embedded"
	"github.com/parti-io/parti/internal/faultproxy"
)

// syncBuffer is a buffer safe for a writer and a reader on two goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freeRun returns the first of n consecutive loopback ports that were free
// a moment ago.
func freeRun(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{l}
		ok := true
		for i := 1; i < n && ok; i++ {
			li, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, li)
		}
		for _, li := range ls {
			li.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no run of free ports")
	return 0
}

// stopWorker cancels a worker's context and fails the test unless the
// worker returns nil within 60 s.
func stopWorker(t *testing.T, cancel context.CancelFunc, done <-chan error, errOut *syncBuffer) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("worker: %v\n%s", err, errOut.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the worker did not stop")
	}
}

func waitOutput(t *testing.T, b *syncBuffer, what string, cond func(string) bool) {
	t.Helper()
	waitFor(t, 60*time.Second, func() bool { return cond(b.String()) }, func() string {
		return fmt.Sprintf("no %s within 60s; output:\n%s", what, b.String())
	})
}

// waitFor polls cond until it holds, or fails the test with why() at the
// deadline.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool, why func() string) {
	t.Helper()
	waitfor.UntilOr(t, timeout, cond, why)
}

// TestClusterNodesAndReplicatedWorker runs what README shows: three
// `server --node N` on loopback and a worker given the three URLs and
// --replicas 3; the worker joins and owns every partition, and the
// group's stream has three replicas.
func TestClusterNodesAndReplicatedWorker(t *testing.T) {
	port, clusterPort := freeRun(t, clusterSize), freeRun(t, clusterSize)
	store := t.TempDir()
	for node := 1; node <= clusterSize; node++ {
		s, err := startClusterNode("127.0.0.1", port, clusterPort, node, store)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	}
	urls := clusterURLs("127.0.0.1", port)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- worker(ctx, []string{"--id", "worker-1", "--replicas", "3", "--server", urls, "--partitions", "8"}, &out, &errOut)
	}()
	waitOutput(t, &out, "every partition", func(s string) bool { return strings.Count(s, "  + tenant-") == 8 })

	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctx, "PARTI_fleet")
	if err != nil {
		t.Fatal(err)
	}
	if r := st.CachedInfo().Config.Replicas; r != 3 {
		t.Fatalf("the group's stream has %d replicas, want 3", r)
	}
	stopWorker(t, cancel, done, &errOut)
}

func TestClusterNodeRange(t *testing.T) {
	for _, n := range []int{-1, 4} {
		if _, err := startClusterNode("127.0.0.1", 1, 1, n, t.TempDir()); err == nil {
			t.Errorf("--node %d was accepted", n)
		}
	}
}

// TestRejoinIsAnnounced: a worker cut off from the server for longer than
// the expiry is expired by the other; when it is reachable again it rejoins
// as a new incarnation and says so on stdout.
func TestRejoinIsAnnounced(t *testing.T) {
	s, err := embedded.Start("127.0.0.1", -1, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	proxy, err := faultproxy.Start(strings.TrimPrefix(s.ClientURL(), "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out1, out2, errOut syncBuffer
	done := make(chan error, 2)
	go func() {
		done <- worker(ctx, []string{"--id", "worker-1", "--server", s.ClientURL(), "--partitions", "8"}, &out1, &errOut)
	}()
	waitOutput(t, &out1, "worker-1's partitions", func(s string) bool { return strings.Count(s, "  + tenant-") == 8 })
	go func() {
		done <- worker(ctx, []string{"--id", "worker-2", "--server", proxy.URL(), "--partitions", "8"}, &out2, &errOut)
	}()
	waitOutput(t, &out2, "worker-2's share", func(s string) bool { return strings.Count(s, "  + tenant-") > 0 })
	proxy.SetMode(faultproxy.Blackhole)
	// worker-1 takes everything back once worker-2 is expired.
	waitOutput(t, &out1, "worker-2 expired", func(s string) bool {
		return strings.Count(s, "  + tenant-")-strings.Count(s, "  - tenant-") == 8 && strings.Contains(s, "  - tenant-")
	})
	proxy.SetMode(faultproxy.Pass)
	waitOutput(t, &out2, "the rejoin announced", func(s string) bool {
		return strings.Contains(s, "rejoined as worker-2/2 (expired while frozen or cut off)")
	})
	cancel()
	for range 2 {
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatal("a worker did not stop")
		}
	}
}

// A worker started before its server (everything started at once) waits
// for it and joins once it answers, instead of failing with "no servers
// available for connection".
func TestWorkerWaitsForItsServer(t *testing.T) {
	port := freeRun(t, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- worker(ctx, []string{"--id", "worker-1", "--server", fmt.Sprintf("nats://127.0.0.1:%d", port), "--partitions", "4"}, &out, &errOut)
	}()
	waitOutput(t, &out, "the wait announced", func(s string) bool { return strings.Contains(s, "waiting up to") })
	select {
	case err := <-done:
		t.Fatalf("the worker ended before its server started: %v\n%s", err, errOut.String())
	default:
	}
	s, err := embedded.Start("127.0.0.1", port, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	waitOutput(t, &out, "every partition", func(s string) bool { return strings.Count(s, "  + tenant-") == 4 })
	stopWorker(t, cancel, done, &errOut)
}
