package replay_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/parti-io/parti/replay"
	"github.com/parti-io/parti/replay/replaytest"
)

// Example builds a small group's history, audits it, and explains one
// partition.
func Example() {
	rec := replaytest.NewRecorder(replaytest.Base, replaytest.Step)
	b, _ := replaytest.NewBuilder("orders", rec)
	replaytest.Scenario(b)
	src, _ := replay.NewMemorySource("orders", rec.Records)

	ctx := context.Background()
	rep, err := replay.Audit(ctx, src, replay.AuditOptions{MaxUnowned: 30 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("clean %v: %d decisions accepted, %d rejected, %d garbage records\n",
		rep.Clean, rep.Decisions.Accepted, rep.Decisions.Rejected, rep.Reads.Garbage)

	ex, _ := replay.Explain(ctx, src, "p-00")
	for _, c := range ex.Changes {
		fmt.Printf("seq %d: %s\n", c.Seq, c.Kind)
	}
	// Output:
	// clean false: 4 decisions accepted, 1 rejected, 1 garbage records
	// seq 8: declared
	// seq 10: assigned
	// seq 30: orphaned
	// seq 32: rejected
	// seq 33: assigned
	// seq 38: takeover
	// seq 42: move-requested
	// seq 43: moved
}

// ExampleExport writes records in the export format.
func ExampleExport() {
	rec := replaytest.NewRecorder(replaytest.Base, replaytest.Step)
	b, _ := replaytest.NewBuilder("orders", rec)
	b.Claim("worker-0")
	b.Heartbeat("worker-0")
	replay.Export(os.Stdout, rec.Records)
	// Output:
	// {"parti_export":1,"group":"orders"}
	// {"seq":1,"time":"2026-03-01T10:00:00Z","subject":"parti.orders.log","body":{"v":1,"t":2,"e":{"id":"worker-0","nonce":"n0001-worker-0","max_protocol":1}}}
	// {"seq":2,"time":"2026-03-01T10:00:00.25Z","subject":"parti.orders.hb.worker-0.1","headers":{"Nats-Expected-Last-Subject-Sequence":["0"],"Nats-TTL":["5m"]},"body":{"v":1,"t":100,"e":{"n":"n0001-worker-0","a":1}}}
	// {"parti_export_end":1,"group":"orders","records":2}
}

// Which records the fold ignores are violations (a correct member never
// writes them) and which are information (a benign repeat or a lost race).
func ExampleIsViolation() {
	for _, reason := range []string{"release matched no ownership", "nonce of a past incarnation"} {
		fmt.Printf("%s: violation %v\n", reason, replay.IsViolation(reason))
	}
	// Output:
	// release matched no ownership: violation false
	// nonce of a past incarnation: violation true
}
