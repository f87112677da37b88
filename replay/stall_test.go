package replay

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/faultproxy"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/replay/replaytest"
)

// shortWaits are the pull requests' waits in these tests, shorter than a
// source's defaults to keep the tests short.
var shortWaits = [2]time.Duration{500 * time.Millisecond, time.Second}

// pullSubject is the prefix of the subject a pull request is published on.
const pullSubject = "$JS.API.CONSUMER.MSG.NEXT."

// TestScanSurvivesALostPullRequest is the hang of issue 13: the first pull
// request of a read never reaches the server (the connection stays
// healthy). A read must notice that nothing arrives while messages are
// pending, rebuild its consumer and finish; before the fix it waited
// forever (here: until the test's deadline).
func TestScanSurvivesALostPullRequest(t *testing.T) {
	g := startLive(t, "")
	replaytest.Scenario(g.b)
	if g.b.Err() != nil {
		t.Fatal(g.b.Err())
	}
	proxy, err := faultproxy.Start(strings.TrimPrefix(g.url, "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	var dropped atomic.Int32
	proxy.SetDropPublish(func(subject string) bool {
		// Lose the first pull request of the first two reads.
		return strings.HasPrefix(subject, pullSubject) && dropped.Add(1) <= 2
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := Connect(ctx, ConnectOptions{Server: proxy.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	src, err := c.Source(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	src.pullWait = shortWaits
	want, err := src.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range []ScanOptions{{}, {LogOnly: true}} {
		var last uint64
		err := src.Scan(ctx, opts, func(r *events.Record) error {
			if r.Seq <= last {
				t.Fatalf("record %d after %d", r.Seq, last)
			}
			last = r.Seq
			return nil
		})
		if err != nil {
			t.Fatalf("scan %+v: %v (a lost pull request stalls the read)", opts, err)
		}
		if !opts.LogOnly && last != want {
			t.Fatalf("scan ended at %d, the stream at %d", last, want)
		}
	}
	if dropped.Load() < 2 {
		t.Fatalf("the proxy dropped %d pull requests, want 2: the test tests nothing", dropped.Load())
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("deadline")
	}
}

// TestScanTimesOutSayingWhy: a server that stops answering (every
// JetStream request and pull request lost) fails the read with ErrTimeout
// once no progress was made for the timeout, instead of waiting forever.
func TestScanTimesOutSayingWhy(t *testing.T) {
	g := startLive(t, "")
	replaytest.Scenario(g.b)
	proxy, err := faultproxy.Start(strings.TrimPrefix(g.url, "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := Connect(ctx, ConnectOptions{Server: proxy.URL(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	src, err := c.Source(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	src.pullWait = shortWaits
	var dropped atomic.Int32
	proxy.SetDropPublish(func(subject string) bool {
		if strings.HasPrefix(subject, "$JS.API.") {
			dropped.Add(1)
			return true
		}
		return false
	})
	for _, opts := range []ScanOptions{{}, {Follow: true}} {
		err = src.Scan(ctx, opts, func(*events.Record) error { return nil })
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("scan %+v on a silent server: %v, want ErrTimeout", opts, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("scan %+v ran into the test's deadline", opts)
		}
	}
	if _, err := src.LastSeq(ctx); !errors.Is(err, ErrTimeout) {
		t.Fatalf("LastSeq on a silent server: %v, want ErrTimeout", err)
	}
	if dropped.Load() == 0 {
		t.Fatal("nothing was dropped: the test tests nothing")
	}
}

// TestFollowSurvivesALostPullRequest: a followed read whose pull request
// is lost still delivers what the stream holds.
func TestFollowSurvivesALostPullRequest(t *testing.T) {
	g := startLive(t, "")
	g.b.Claim("worker-0")
	proxy, err := faultproxy.Start(strings.TrimPrefix(g.url, "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	var dropped atomic.Int32
	proxy.SetDropPublish(func(subject string) bool {
		return strings.HasPrefix(subject, pullSubject) && dropped.Add(1) == 1
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := Connect(ctx, ConnectOptions{Server: proxy.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	src, err := c.Source(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	src.pullWait = shortWaits
	err = src.Scan(ctx, ScanOptions{Follow: true}, func(r *events.Record) error {
		if r.Seq != 1 {
			t.Fatalf("first record %d", r.Seq)
		}
		return ErrStop
	})
	if err != nil {
		t.Fatalf("follow after a lost pull request: %v", err)
	}
	if dropped.Load() == 0 {
		t.Fatal("nothing was dropped: the test tests nothing")
	}
}

// TestReadsWithTheDocumentedPermissions: a read, bounded or followed
// (idle past a pull request's expiry, then fed), needs only the read-side
// permissions README lists for parti-replay: stream info, message get,
// consumer create, delete and next, and its inbox.
func TestReadsWithTheDocumentedPermissions(t *testing.T) {
	s := "PARTI_orders"
	opts := natstest.Options(t.TempDir())
	opts.Users = []*server.User{
		{Username: "admin", Password: "a"},
		{Username: "reader", Password: "r", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{
				"$JS.API.STREAM.INFO." + s,
				"$JS.API.STREAM.MSG.GET." + s,
				"$JS.API.CONSUMER.CREATE." + s + ".>",
				"$JS.API.CONSUMER.DELETE." + s + ".>",
				"$JS.API.CONSUMER.MSG.NEXT." + s + ".>",
			}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
		}},
	}
	srv := natstest.Start(t, opts)
	_, js := natstest.Connect(t, srv.ClientURL(), nats.UserInfo("admin", "a"))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := projection.Provision(ctx, js, projection.StreamConfig{Group: "orders"}); err != nil {
		t.Fatal(err)
	}
	subj, _ := events.NewSubjects("orders")
	b, err := replaytest.NewBuilder("orders", &replaytest.AppenderEmitter{Ctx: ctx, App: projection.NewAppender(js, subj), JS: js})
	if err != nil {
		t.Fatal(err)
	}
	replaytest.Scenario(b)
	c, err := Connect(ctx, ConnectOptions{Server: strings.Replace(srv.ClientURL(), "nats://", "nats://reader:r@", 1), Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	src, err := c.Source(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	src.pullWait = shortWaits
	last, err := src.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []ScanOptions{{}, {LogOnly: true}} {
		n := 0
		if err := src.Scan(ctx, o, func(*events.Record) error { n++; return nil }); err != nil || n == 0 {
			t.Fatalf("scan %+v as the reader: %d records, %v", o, n, err)
		}
	}
	// Follow from the end: the first pull request expires with nothing;
	// then a record arrives and is delivered.
	got := make(chan uint64, 1)
	done := make(chan error, 1)
	go func() {
		done <- src.Scan(ctx, ScanOptions{Follow: true, From: last + 1}, func(r *events.Record) error {
			got <- r.Seq
			return ErrStop
		})
	}()
	idle := time.NewTimer(shortWaits[1] + 500*time.Millisecond)
	select {
	case seq := <-got:
		t.Fatalf("record %d delivered before any was appended", seq)
	case err := <-done:
		t.Fatalf("the followed read ended while idle: %v", err)
	case <-idle.C:
	}
	b.Claim("worker-9")
	// The reader sends the record, then its scan ends (ErrStop): both
	// channels may be ready at once, and select picks either.
	var seq uint64
	select {
	case seq = <-got:
	case err := <-done:
		select {
		case seq = <-got:
			done <- err
		default:
			t.Fatalf("the followed read ended: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the appended record was never delivered")
	}
	if seq != last+1 {
		t.Fatalf("followed record %d, want %d", seq, last+1)
	}
	if err := <-done; err != nil {
		t.Fatalf("follow: %v", err)
	}
}
