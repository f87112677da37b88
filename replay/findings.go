package replay

import (
	"fmt"
	"slices"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// The audit's two kinds of finding, by one written rule (DESIGN, "the audit's
// two kinds of finding"): a record that a correct member (or a correct
// operator tool) never writes is a violation; a benign repeat or a race a
// correct process can lose is information. Every record the fold ignores or
// skips is one or the other, by the fold's reason, in this table; every
// decision the fold rejects is a violation (a correct leader's decision is
// fenced on the log it was computed from, so it lands only where it is
// valid); and these records are violations too:
//
//   - on a heartbeat subject, anything but a heartbeat or a verdict: garbage,
//     an event of another type, a record of a protocol version the group was
//     not at; and a heartbeat stored after a verdict on the same subject (a
//     fenced heartbeat cannot land there: it is a raw copy);
//   - a removal whose cited verdict is a log record or a heartbeat, a removal
//     "expired" that cites no verdict, a removal "forced" with no
//     force-expire of that incarnation before it, a removal of an unknown
//     reason;
//   - a claim that reuses the nonce of a past incarnation.
//
// A valid version-set event above this build's version is information: the
// log records after it are of a version this build cannot read, and the
// audit stops folding there (a warning says so).
//
// neverWritten maps each reason of the fold (decider.Outcome.Reason) for an
// ignored or skipped record to true when a correct process never writes
// such a record, false when a correct one can (a repeat, or a race it lost).
var neverWritten = map[string]bool{
	// Benign: resent or raced by correct members and operators.
	"release matched no ownership":                                      false, // a resent or late release
	"release by an incarnation that is not a member":                    false, // a release that landed after the removal
	"removal of an incarnation that is not a member":                    false, // a second removal of the same incarnation
	"nonce already granted":                                             false, // a claim resent after a lost ack
	"nonce already waiting":                                             false,
	"leave of an incarnation that is not live":                          false, // a resent leave
	"close of an incarnation that is not live":                          false,
	"no window open":                                                    false,
	"grace end for an incarnation that is not closing":                  false,
	"claim of a build that does not speak the group's protocol version": false, // raced the version raise
	"force-expire of an incarnation already forced":                     false, // two operators
	"force-expire of an incarnation that is not a member":               false, // an operator's stale view
	"operator action on an unknown member":                              false,
	"operator move of an unknown partition":                             false,
	"operator move to an ineligible member":                             false,
	"operator move to a member without the partition's required labels": false, // an operator's stale view
	"sequence already folded":                                           false,
	"a live member does not support the version":                        true,
	"protocol version cannot go down":                                   true,
	"protocol version out of range":                                     true,
	"protocol version set with no live member":                          true,
	"claim of an invalid ID":                                            true,
	"claim without nonce":                                               true,
	"nonce of a past incarnation":                                       true, // a dead incarnation's claim replayed
	"declaration not by the leader":                                     true,
	"declaration version not newer":                                     true,
	"declaration part out of order":                                     true,
	"declaration has a duplicate partition ID":                          true,
	"declaration has a zero weight":                                     true,
	"declaration has an invalid partition ID":                           true,
	"declaration weights do not match IDs":                              true,
	"unknown operator action":                                           true,
	"undecodable":                                                       true,
	"not a log event":                                                   true,
	"record of a protocol version this build does not speak":            true,
	"record without a sequence":                                         false, // reported as a sequence violation
}

// ViolationRecord: a record that a correct member never writes, which the
// fold ignored, skipped or rejected (see neverWritten), or junk on a
// heartbeat subject.
const ViolationRecord = "record"

// IsViolation reports whether a record the fold ignored or skipped for
// reason is one a correct process never writes. Reasons of genesis records
// are judged by the genesis checks and are not in the table; an unknown
// reason counts as a violation.
func IsViolation(reason string) bool {
	v, ok := neverWritten[reason]
	return !ok || v
}

// BenignReasons and ViolationReasons list the table's reasons, sorted (for
// `parti-replay audit --help`).
func BenignReasons() []string { return reasonsWhere(false) }

// ViolationReasons lists the reasons that are violations, sorted.
func ViolationReasons() []string { return reasonsWhere(true) }

func reasonsWhere(v bool) []string {
	var out []string
	for r, nv := range neverWritten {
		if nv == v {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// foldFinding turns what the fold did with log record r into a violation
// when a correct process never writes such a record.
func (a *auditor) foldFinding(r *events.Record, out decider.Outcome) {
	switch out.Kind {
	case decider.Ignored, decider.Skipped:
		if isGenesis(r) || !IsViolation(out.Reason) {
			return
		}
		kind := ViolationRecord
		if out.Reason == "record of a protocol version this build does not speak" {
			kind = ViolationNewer
		}
		a.violate(Violation{Kind: kind, Seq: r.Seq, Time: r.Time,
			Message: fmt.Sprintf("a %s record that a correct member never writes: %s (the fold %s it)", eventName(r), out.Reason, out.Kind)})
	case decider.Rejected:
		a.violate(Violation{Kind: ViolationRecord, Seq: r.Seq, Time: r.Time,
			Message: fmt.Sprintf("a decision the fold rejected: %s (a correct leader's decision is fenced on the log it was computed from)", out.Reason)})
	}
}

func isGenesis(r *events.Record) bool {
	_, ok := r.Event.(*events.Genesis)
	return ok
}

// heartbeatFinding checks a record on a heartbeat subject (not a verdict:
// see record).
func (a *auditor) heartbeatFinding(r *events.Record) {
	switch e := r.Event.(type) {
	case *events.Heartbeat:
		if a.verdictOn[r.Subject] != 0 {
			a.violate(Violation{Kind: ViolationRecord, Seq: r.Seq, Time: r.Time,
				Message: fmt.Sprintf("a heartbeat on %s after the verdict at seq %d: a fenced heartbeat cannot land after a verdict (a raw copy, or a fence not used)", r.Subject, a.verdictOn[r.Subject])})
		}
		_ = e
	case nil:
		if r.Version > events.MaxVersion && a.f.s.NewerVersionAt != 0 {
			return // the group moved on: not this build's to judge
		}
		kind := ViolationRecord
		what := "garbage"
		if r.Version > events.MaxVersion {
			kind, what = ViolationNewer, fmt.Sprintf("a record of protocol version %d, which the group was not at", r.Version)
		}
		a.violate(Violation{Kind: kind, Seq: r.Seq, Time: r.Time,
			Message: fmt.Sprintf("%s on heartbeat subject %s: a correct member never writes it (judges fence over it)", what, r.Subject)})
	default:
		a.violate(Violation{Kind: ViolationRecord, Seq: r.Seq, Time: r.Time,
			Message: fmt.Sprintf("a %s on heartbeat subject %s: a correct member writes only heartbeats and verdicts there", eventName(r), r.Subject)})
	}
}

// removalFinding checks what a removal cites, beyond checkRemoval's verdict
// lookup. It returns false when the removal was a repeat (information).
func (a *auditor) removalFinding(r *events.Record, e *events.MemberRemoved) bool {
	k := MemberRef(e.Member, e.Incarnation)
	if _, again := a.removed[k]; again {
		a.rep.Removals.Repeated++
		return false
	}
	a.removed[k] = r.Seq
	bad := func(format string, args ...any) {
		a.violate(Violation{Kind: ViolationVerdict, Seq: r.Seq, Time: r.Time,
			Message: fmt.Sprintf("the removal of %s ", k) + fmt.Sprintf(format, args...)})
	}
	switch e.Reason {
	case events.ReasonExpired:
		if e.VerdictSeq == 0 {
			bad("(expired) cites no verdict")
		}
	case events.ReasonForced:
		if _, ok := a.forced[k]; !ok {
			bad("(forced) follows no force-expire of that incarnation")
		}
		if e.VerdictSeq == 0 {
			bad("(forced) cites no verdict")
		}
	case events.ReasonProtocol:
	default:
		bad("gives an unknown reason %q", e.Reason)
	}
	if e.VerdictSeq != 0 && e.VerdictSeq < r.Seq {
		if seqIn(a.logSeqs, e.VerdictSeq) {
			bad("cites log record %d as its verdict", e.VerdictSeq)
		} else if seqIn(a.hbSeqs, e.VerdictSeq) {
			bad("cites seq %d, a heartbeat or junk, not a verdict, as its verdict", e.VerdictSeq)
		}
	}
	return true
}

// seqIn reports whether seq is in the increasing slice seqs.
func seqIn(seqs []uint64, seq uint64) bool {
	_, ok := slices.BinarySearch(seqs, seq)
	return ok
}

// otherFinding flags a record on a subject that is not one of the audited
// group's: a history that mixes groups (an export spliced from two, or one
// whose first record named another group than the rest) is not the history
// of one group, and must not audit clean.
func (a *auditor) otherFinding(r *events.Record) {
	if a.otherShown >= 10 {
		a.rep.ViolationCount++
		a.rep.Truncated = true
		return
	}
	a.otherShown++
	a.violate(Violation{Kind: ViolationSequence, Seq: r.Seq, Time: r.Time,
		Message: fmt.Sprintf("a record on %s, not a subject of group %s: the history mixes groups (spliced?)", r.Subject, a.rep.Group)})
}
