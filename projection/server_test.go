package projection

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// testServer is an in-process nats-server with JetStream on a file store.
type testServer struct {
	srv  *server.Server
	port int
	dir  string
}

// startNATS starts a server on port (-1: any free port) storing in dir.
func startNATS(port int, dir string) (*server.Server, error) {
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		return nil, err
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats-server not ready")
	}
	return srv, nil
}

// runServer starts a server for the test; it is shut down at cleanup.
func runServer(t testing.TB) *testServer {
	t.Helper()
	dir := t.TempDir()
	srv, err := startNATS(-1, dir)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, port: srv.Addr().(*net.TCPAddr).Port, dir: dir}
	t.Cleanup(func() { ts.srv.Shutdown(); ts.srv.WaitForShutdown() })
	return ts
}

// restart shuts the server down and starts it again on the same port,
// storing in dir (ts.dir keeps the store; a fresh directory loses it).
func (ts *testServer) restart(t testing.TB, dir string) {
	t.Helper()
	ts.srv.Shutdown()
	ts.srv.WaitForShutdown()
	srv, err := startNATS(ts.port, dir)
	if err != nil {
		t.Fatal(err)
	}
	ts.srv, ts.dir = srv, dir
}

// connect opens a client connection that reconnects quickly and forever.
func (ts *testServer) connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(ts.srv.ClientURL(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectJitter(0, 0),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// testCtx is a context that ends with the test or after a minute.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
}

// reconnectWatch returns a function that waits until nc has reconnected
// after this call: the CONNECTED that follows a RECONNECTING. IsConnected
// alone can still report a connection the client has not yet seen drop.
func reconnectWatch(t testing.TB, nc *nats.Conn) func() {
	t.Helper()
	ch := nc.StatusChanged(nats.RECONNECTING, nats.CONNECTED)
	return func() {
		t.Helper()
		defer nc.RemoveStatusListener(ch)
		timeout := time.After(20 * time.Second)
		down := false
		for {
			select {
			case st := <-ch:
				if st == nats.RECONNECTING {
					down = true
				} else if down && nc.IsConnected() {
					return
				}
			case <-timeout:
				t.Fatal("the client did not reconnect")
			}
		}
	}
}
