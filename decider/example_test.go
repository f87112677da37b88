package decider_test

import (
	"fmt"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// appendLog stands in for the stream: it numbers each event, encodes and
// decodes it as a reader would, and folds the record.
type appendLog struct {
	s   *decider.State
	seq uint64
}

func (l *appendLog) append(ev events.Event) decider.Outcome {
	l.seq++
	body := events.MustEncode(events.MaxVersion, ev)
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(l.seq) * time.Second)
	return decider.Apply(l.s, events.NewRecord(l.seq, ts, "parti.orders.log", nil, body))
}

// Two processes join a group, the leader declares four partitions, closes
// the cold-start window and decides; the fold applies the decision.
func Example() {
	log := &appendLog{s: decider.New()}
	for _, nonce := range []string{"nonce-a", "nonce-b"} {
		claim, err := decider.Claim("", nonce, 0) // "": the lowest free worker slot
		if err != nil {
			panic(err)
		}
		log.append(claim)
	}
	a := log.s.GrantedTo("nonce-a")
	fmt.Printf("nonce-a is %s/%d; leader: %v; phase: %v\n", a.ID, a.Incarnation, log.s.IsLeader(a.ID, a.Incarnation), log.s.Phase())

	decl, err := decider.Declare(log.s, a.ID, a.Incarnation, []string{"tenant-a", "tenant-b", "tenant-c", "tenant-d"}, nil, "", 0)
	if err != nil {
		panic(err)
	}
	for _, d := range decl {
		log.append(d)
	}
	closed, err := decider.CloseWindow(log.s, a.ID, a.Incarnation, 100) // measured by the leader: 100 ms
	if err != nil {
		panic(err)
	}
	log.append(closed)

	d, err := decider.Decide(log.s, a.ID, a.Incarnation)
	if err != nil {
		panic(err)
	}
	fmt.Printf("decision: gen %d, %s, based on %d, %d moves\n", d.Generation, d.Reason, d.BasedOn, len(d.Moves))
	fmt.Println("apply:", log.append(d).Kind)
	for i, o := range log.s.Owners {
		fmt.Printf("%s → %s (token %v)\n", log.s.Partitions[i], o.Owner, o.FencingToken())
	}
	fmt.Println("phase:", log.s.Phase())

	// Nothing more to do: Decide returns nil on a stable group.
	d, err = decider.Decide(log.s, a.ID, a.Incarnation)
	fmt.Println("next decision:", d, err)
	// Output:
	// nonce-a is worker-0/1; leader: true; phase: cold-start
	// decision: gen 1, cold-start, based on 4, 2 moves
	// apply: applied
	// tenant-a → worker-1 (token 5/1)
	// tenant-b → worker-0 (token 5/1)
	// tenant-c → worker-1 (token 5/1)
	// tenant-d → worker-0 (token 5/1)
	// phase: stable
	// next decision: <nil> <nil>
}

// A decision that was computed on an older log position is rejected where
// it lands, and the state records why.
func ExampleApply_rejected() {
	log := &appendLog{s: decider.New()}
	claim, _ := decider.Claim("worker-0", "n0", 0)
	log.append(claim)
	decl, _ := decider.Declare(log.s, "worker-0", 1, []string{"p0", "p1"}, nil, "", 0)
	log.append(decl[0])
	closed, _ := decider.CloseWindow(log.s, "worker-0", 1, 100)
	log.append(closed)
	d, _ := decider.Decide(log.s, "worker-0", 1)

	// Another member's claim lands first: the decision's fence is stale.
	claim, _ = decider.Claim("worker-1", "n1", 0)
	log.append(claim)
	out := log.append(d)
	fmt.Println(out.Kind, "-", out.Reason)
	fmt.Println("rejected at", log.s.LastRejection.Seq, "unowned:", log.s.Unowned())
	// Output:
	// rejected - computed on a different log position
	// rejected at 5 unowned: 2
}
