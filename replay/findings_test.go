package replay

import (
	"fmt"
	"strings"
	"testing"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/replay/replaytest"
)

// Issue 12: hand-made histories the fold rejects or ignores, or that hold
// junk on heartbeat subjects, used to audit CLEAN. Each is now a violation
// of the kind given, with its reason; benign repeats stay information.
func TestAuditFlagsWhatACorrectMemberNeverWrites(t *testing.T) {
	type hist struct {
		rec *replaytest.Recorder
		b   *replaytest.Builder
	}
	base := func(t *testing.T) hist {
		rec := replaytest.NewRecorder(replaytest.Base, replaytest.Step)
		b, err := replaytest.NewBuilder("orders", rec)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"worker-0", "worker-1", "worker-2"} {
			b.Claim(id)
		}
		b.Heartbeats()
		b.Declare(replaytest.PartitionIDs(6), "sticky", 0)
		b.CloseWindow(100)
		b.Decide()
		b.Heartbeats()
		if b.Err() != nil {
			t.Fatal(b.Err())
		}
		return hist{rec, b}
	}
	enc := func(ev events.Event) []byte { return events.MustEncode(events.MaxVersion, ev) }
	hb := func(h hist, id string) string {
		m := h.b.Member(id)
		return h.b.Subjects.Heartbeat(m.ID, m.Incarnation)
	}
	tests := []struct {
		name  string
		add   func(h hist)
		kind  string // "" : clean
		text  string
		check func(t *testing.T, rep *AuditReport)
	}{
		{"clean base", func(hist) {}, "", "", nil},
		{"decision by a non-leader", func(h hist) {
			s := h.b.State
			h.b.Log(&events.AssignmentDecided{Generation: s.Generation + 1, BasedOn: s.LastSeq, Leader: "worker-2", LeaderInc: 1,
				Reason: events.DecideRebalance, Moves: []events.Move{{Parts: events.Ranges{0, 0}, From: s.Owners[0].Owner, FromInc: s.Owners[0].Inc, To: "worker-2", ToInc: 1}}}, true)
		}, ViolationRecord, "not by the current leader", nil},
		{"stale decision", func(h hist) {
			s := h.b.State
			l, _ := s.Leader()
			to := "worker-1"
			if s.Owners[0].Owner == to {
				to = "worker-2"
			}
			h.b.Log(&events.AssignmentDecided{Generation: s.Generation + 1, BasedOn: s.LastSeq - 1, Leader: l.ID, LeaderInc: l.Incarnation,
				Reason: events.DecideRebalance, Moves: []events.Move{{Parts: events.Ranges{0, 0}, From: s.Owners[0].Owner, FromInc: s.Owners[0].Inc, To: to, ToInc: 1}}}, false)
		}, ViolationRecord, "computed on a different log position", nil},
		{"garbage on a heartbeat subject", func(h hist) { h.b.Raw(hb(h, "worker-1"), nil, []byte("garbage{")) }, ViolationRecord, "garbage on heartbeat subject", nil},
		{"another event type on a heartbeat subject", func(h hist) {
			h.b.Raw(hb(h, "worker-1"), nil, enc(&events.MemberLeft{Member: "worker-1", Incarnation: 1}))
		}, ViolationRecord, "member-left", nil},
		{"a newer version on a heartbeat subject", func(h hist) {
			h.b.Raw(hb(h, "worker-1"), nil, []byte(fmt.Sprintf(`{"v":%d,"t":100,"e":{"n":"x"}}`, events.MaxVersion+1)))
		}, ViolationNewer, "which the group was not at", nil},
		{"a stray newer version on the log", func(h hist) {
			h.b.LogRaw(nil, []byte(fmt.Sprintf(`{"v":%d,"t":3,"e":{}}`, events.MaxVersion+1)))
		}, ViolationNewer, "does not speak", nil},
		{"a heartbeat after a verdict", func(h hist) {
			subj := hb(h, "worker-2")
			h.b.Crash("worker-2", 6000)
			h.b.Raw(subj, nil, enc(&events.Heartbeat{Nonce: "x"}))
		}, ViolationRecord, "after the verdict", nil},
		{"a removal citing a log record", func(h hist) {
			h.b.Log(&events.MemberRemoved{Member: "worker-2", Incarnation: 1, Reason: events.ReasonExpired, VerdictSeq: h.b.State.LastSeq}, false)
		}, ViolationVerdict, "cites log record", nil},
		{"a removal citing a heartbeat", func(h hist) {
			seq := h.b.Raw(hb(h, "worker-2"), nil, enc(&events.Heartbeat{Nonce: "x"}))
			h.b.Log(&events.MemberRemoved{Member: "worker-2", Incarnation: 1, Reason: events.ReasonExpired, VerdictSeq: seq}, false)
		}, ViolationVerdict, "not a verdict", nil},
		{"expired with no verdict", func(h hist) {
			h.b.Log(&events.MemberRemoved{Member: "worker-2", Incarnation: 1, Reason: events.ReasonExpired}, false)
		}, ViolationVerdict, "cites no verdict", nil},
		{"forced with no force-expire", func(h hist) {
			h.b.Log(&events.MemberRemoved{Member: "worker-2", Incarnation: 1, Reason: events.ReasonForced, VerdictSeq: 1}, false)
		}, ViolationVerdict, "follows no force-expire", nil},
		{"a claim reusing a past incarnation's nonce", func(h hist) {
			nonce := h.b.Member("worker-2").Nonce
			h.b.Crash("worker-2", 6000)
			h.b.Log(&events.MemberClaimed{ID: "worker-2", Nonce: nonce, MaxProtocol: events.MaxVersion}, false)
		}, ViolationRecord, "nonce of a past incarnation", nil},
		{"a second removal is information", func(h hist) {
			h.b.Crash("worker-2", 6000)
			h.b.Log(&events.MemberRemoved{Member: "worker-2", Incarnation: 1, Reason: events.ReasonExpired, VerdictSeq: h.b.State.LastSeq - 1}, false)
		}, "", "", func(t *testing.T, rep *AuditReport) {
			if rep.Removals.Repeated != 1 || rep.Removals.Total != 1 {
				t.Errorf("removals %+v, want 1 and 1 repeated", rep.Removals)
			}
		}},
		{"a resent release is information", func(h hist) {
			h.b.Heartbeat("worker-0")
			h.b.StaleRelease("worker-1")
		}, "", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := base(t)
			tc.add(h)
			if h.b.Err() != nil {
				t.Fatal(h.b.Err())
			}
			rep, err := Audit(t.Context(), memSource(t, h.rec.Records), AuditOptions{CheckEvery: 1})
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, rep)
			}
			if tc.kind == "" {
				if !rep.Clean {
					t.Fatalf("violations: %+v", rep.Violations)
				}
				return
			}
			for _, v := range rep.Violations {
				if v.Kind == tc.kind && strings.Contains(v.Message, tc.text) {
					return
				}
			}
			t.Fatalf("no %s violation mentioning %q: clean %v, %+v", tc.kind, tc.text, rep.Clean, rep.Violations)
		})
	}
}

// Issue 12: a file spliced from two groups' exports audited CLEAN, as the
// group of its first record. Records of another group are violations.
func TestAuditFlagsASplicedHistory(t *testing.T) {
	recs := scenario(t)
	last := recs[len(recs)-1]
	other := record(last.Seq+1, "parti.payments.log", &events.MemberClaimed{ID: "worker-0", Nonce: "n", MaxProtocol: events.MaxVersion})
	rep, err := Audit(t.Context(), memSource(t, append(recs[:len(recs):len(recs)], other)), AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range rep.Violations {
		if v.Seq == other.Seq && strings.Contains(v.Message, "mixes groups") {
			return
		}
	}
	t.Fatalf("no violation for a record of another group: %+v", rep.Violations)
}
