package decider

import (
	"fmt"
	"testing"

	"github.com/parti-io/parti/events"
)

// FuzzApply folds adversarial event sequences derived from the fuzzer's
// bytes: events from unknown members, decisions from non-leaders, stale
// generations and bases, duplicates, mismatched releases, re-declarations,
// oversized ranges. Whatever arrives, the state's invariants hold after
// every record and every record is applied or counted.
func FuzzApply(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13})
	f.Add([]byte{0, 0, 0, 3, 9, 9, 9, 4, 4, 6, 6, 1, 2, 2})
	f.Add([]byte{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := New()
		var seq uint64
		ids := []string{"a", "b", "c", "d"}
		at := func(i int) byte {
			if len(data) == 0 {
				return 0
			}
			return data[i%len(data)]
		}
		for i := 0; i < len(data) && i < 400; i++ {
			op, x, y := at(i)%14, at(i+1), at(i+2)
			id := ids[int(x)%len(ids)]
			var inc uint64 = 1
			if m := s.Members[id]; m != nil && y%5 != 0 {
				inc = m.Incarnation // mostly the right incarnation
			} else {
				inc = uint64(y % 4)
			}
			var ev events.Event
			switch op {
			case 0:
				ev = &events.MemberClaimed{ID: id, Nonce: fmt.Sprintf("n%d", y%7), MaxProtocol: 1}
			case 1:
				ev = &events.MemberLeft{Member: id, Incarnation: inc}
			case 2:
				ev = &events.MemberClosing{Member: id, Incarnation: inc}
			case 3:
				ev = &events.MemberRemoved{Member: id, Incarnation: inc, Reason: events.ReasonExpired}
			case 4:
				n := int(y%9) + 1
				ps := make([]string, n)
				for k := range ps {
					ps[k] = fmt.Sprintf("p%d", (k+int(x))%12)
				}
				by := id
				if l, ok := s.Leader(); ok && x%3 != 0 {
					by = l.ID
				}
				ev = &events.PartitionsDeclared{Version: s.DeclVersion + uint64(y%2), IDs: ps, By: by}
			case 5:
				ev = &events.WindowClosed{By: id}
			case 6, 7:
				// A decision: the leader's own (sometimes tampered with) or a
				// forged one.
				if l, ok := s.Leader(); ok && op == 6 {
					if d, err := Decide(s, l.ID, l.Incarnation); err == nil && d != nil {
						switch y % 4 {
						case 1:
							d.BasedOn--
						case 2:
							d.Generation += 2
						case 3:
							d.Leader = id
						}
						ev = d
					}
				}
				if ev == nil {
					ev = &events.AssignmentDecided{Generation: s.Generation + uint64(y%2), BasedOn: s.LastSeq, Leader: id, LeaderInc: inc,
						Moves: []events.Move{{Parts: events.Ranges{uint32(x % 16), uint32(x%16) + uint32(y%20)}, To: ids[int(y)%len(ids)], ToInc: 1}}}
				}
			case 8:
				if r := Release(s, id, inc, y%2 == 0); r != nil {
					if y%3 == 0 && len(r.Released) > 0 {
						r.Released[0].Token++ // a stale token
					}
					ev = r
				} else {
					ev = &events.PartitionsReleased{Member: id, Incarnation: inc, Released: []events.Released{{Partition: uint32(x), Token: uint64(y)}}}
				}
			case 9:
				ev = &events.GraceEnded{Member: id, Incarnation: inc}
			case 10:
				acts := []string{events.OpDrain, events.OpCordon, events.OpUncordon, events.OpPause, events.OpResume, events.OpForceExpire, events.OpMove, "bogus"}
				ev = &events.OperatorAction{Action: acts[int(y)%len(acts)], Member: id, Partition: fmt.Sprintf("p%d", x%12), Target: ids[int(y)%len(ids)]}
			case 11:
				ev = &events.ProtocolVersionSet{Version: uint16(y % 3)}
			case 12:
				ev = &events.Heartbeat{Nonce: "x"} // not a log event
			case 13:
				// a redelivery of an old sequence
				Apply(s, events.Record{Seq: seq / 2, Event: &events.WindowClosed{}})
				continue
			}
			if ev == nil {
				continue
			}
			seq++
			before := s.Counters
			out := Apply(s, events.NewRecord(seq, fixedTime(seq), "parti.g.log", nil, events.MustEncode(1, ev)))
			if err := CheckInvariants(s); err != nil {
				t.Fatalf("record %d (%T, outcome %v %q): %v", seq, ev, out.Kind, out.Reason, err)
			}
			after := s.Counters
			if (after.Applied+after.Ignored+after.Skipped+after.Rejected)-(before.Applied+before.Ignored+before.Skipped+before.Rejected) == 0 && out.Kind != Newer {
				t.Fatalf("record %d (%T) was neither applied nor counted: %v", seq, ev, out)
			}
		}
	})
}
