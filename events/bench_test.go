package events_test

import (
	"fmt"
	"testing"

	"github.com/parti-io/parti/events"
)

// Hot log events as the fold sees them: small releases and claims, and a
// small decision (a rebalance that moves a few partitions).
var (
	benchRelease = &events.PartitionsReleased{Member: "worker-17", Incarnation: 3,
		Released: []events.Released{{Partition: 4711, Token: 912345}}}
	benchClaim         = &events.MemberClaimed{ID: "worker-17", Nonce: "6b0f3c9e2a1d4e58b7c6", MaxProtocol: 1}
	benchLeft          = &events.MemberLeft{Member: "worker-17", Incarnation: 3}
	benchDecisionSmall = &events.AssignmentDecided{Generation: 812, BasedOn: 912344, Leader: "worker-0", LeaderInc: 1,
		Strategy: "sticky", Reason: events.DecideRebalance, Moves: []events.Move{
			{Parts: events.Ranges{4711, 4711}, From: "worker-17", FromInc: 3, To: "worker-201", ToInc: 1},
			{Parts: events.Ranges{88, 88, 9120, 9121}, From: "worker-42", FromInc: 1, To: "worker-201", ToInc: 1},
			{Parts: events.Ranges{1500, 1500}, From: "worker-99", FromInc: 2, To: "worker-201", ToInc: 1},
		}}
	benchRemoved = &events.MemberRemoved{Member: "worker-17", Incarnation: 3, Reason: events.ReasonExpired,
		VerdictSeq: 77123, Judge: "worker-18", SpanMillis: 6003}
	benchWindow = &events.WindowClosed{By: "worker-0", SpanMillis: 100}
)

func benchDecode(b *testing.B, bodies [][]byte) {
	b.ReportAllocs()
	size := 0
	for _, body := range bodies {
		size += len(body)
	}
	b.SetBytes(int64(size / len(bodies)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, err := events.Decode(bodies[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDecode decodes the hot event types one by one and in a realistic
// log mix (mostly small releases and claims, some decisions, a few leaves,
// removals and window closes).
func BenchmarkDecode(b *testing.B) {
	enc := func(ev events.Event) []byte { return events.MustEncode(events.MaxVersion, ev) }
	for _, bc := range []struct {
		name string
		ev   events.Event
	}{
		{"release", benchRelease},
		{"claim", benchClaim},
		{"decision-small", benchDecisionSmall},
	} {
		b.Run(bc.name, func(b *testing.B) { benchDecode(b, [][]byte{enc(bc.ev)}) })
	}
	b.Run("mix", func(b *testing.B) {
		var bodies [][]byte
		add := func(n int, ev events.Event) {
			for range n {
				bodies = append(bodies, enc(ev))
			}
		}
		add(10, benchRelease)
		add(2, benchClaim)
		add(2, benchDecisionSmall)
		add(1, benchLeft)
		add(1, benchRemoved)
		add(1, benchWindow)
		benchDecode(b, bodies)
	})
}

// BenchmarkEncode is the writer's side of the same events.
func BenchmarkEncode(b *testing.B) {
	for _, ev := range []events.Event{benchRelease, benchClaim, benchDecisionSmall} {
		b.Run(ev.Type().String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := events.Encode(events.MaxVersion, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeDeclaration decodes one part of a large declaration.
func BenchmarkDecodeDeclaration(b *testing.B) {
	ids := make([]string, 20000)
	for i := range ids {
		ids[i] = fmt.Sprintf("tenant-%06d", i)
	}
	body := events.MustEncode(1, &events.PartitionsDeclared{Version: 1, Parts: 5, IDs: ids, By: "worker-0"})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := events.Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}
