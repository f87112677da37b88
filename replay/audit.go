package replay

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// AuditOptions configure Audit. The zero value is usable.
type AuditOptions struct {
	// MaxUnowned bounds how long a declared partition may stay without an
	// owner, measured with server timestamps (0: not checked).
	MaxUnowned time.Duration
	// CheckEvery runs decider.CheckInvariants on the whole state after
	// every CheckEvery-th log record (1: after every record). 0 chooses:
	// after every record while the group has at most 64 partitions,
	// otherwise every 16 × partitions records. Either way the audit checks
	// after every record, incrementally, the invariants a record can break:
	// those of every partition it changed, and those of the membership when
	// it changed the membership; the whole state is also checked after every
	// declaration and at the end. A full check costs about 1 µs per
	// partition: after every record it would make a 100,000-partition
	// audit take hours.
	CheckEvery int
	// MaxListed bounds how many violations and rejected decisions are
	// listed (0: 1000); all are counted.
	MaxListed int
	// Previous is the history of the generation the audited one was
	// migrated from (its genesis names the group). When set, the audit
	// refolds it up to the genesis's sequence and checks that the genesis
	// carries exactly that state, and that the old log did not go on after
	// it; see GenesisReport.
	Previous Source

	// MaxHeartbeatGap, if positive, reports every span longer than it in
	// which no member's heartbeat landed while the group had live members
	// (AuditReport.HeartbeatGaps): set it to the group's expiry. A finding,
	// not a violation.
	MaxHeartbeatGap time.Duration

	// verifyEvery (tests) compares the audit's view of every partition
	// with the state after every verifyEvery-th log record.
	verifyEvery int
}

// AuditReport is the result of an audit. Clean is true when no violation
// was found; rejected decisions, ignored events and skipped garbage are
// information, not violations.
type AuditReport struct {
	Group  string `json:"group"`
	Source string `json:"source"`
	Clean  bool   `json:"clean"`
	// First and Last are the first and last records read.
	First Position `json:"first"`
	Last  Position `json:"last"`
	Reads Reads    `json:"reads"`
	// Fold is the fold's own count of applied, skipped, ignored and
	// rejected log records.
	Fold decider.Counters `json:"fold"`
	// IgnoredByReason and SkippedByReason break the fold's ignored and
	// skipped records down by the fold's reason.
	IgnoredByReason []ReasonCount `json:"ignored_by_reason"`
	SkippedByReason []ReasonCount `json:"skipped_by_reason"`
	// Decisions counts accepted and rejected decisions; Rejected lists the
	// rejected ones (information: a leader that lost a race is normal).
	Decisions DecisionCounts     `json:"decisions"`
	Rejected  []RejectedDecision `json:"rejected"`
	// Removals counts removals and whether the verdict each cites was
	// found in the history (a history of the log subject alone has none).
	Removals RemovalCounts `json:"removals"`
	// MaxUnowned is the configured bound ("0s": not checked);
	// LongestUnowned the longest span any partition spent without owner.
	MaxUnowned     string       `json:"max_unowned"`
	LongestUnowned *UnownedSpan `json:"longest_unowned,omitempty"`
	TimeStepsBack  uint64       `json:"time_steps_back"`
	Checks         CheckCounts  `json:"checks"`
	Final          Summary      `json:"final"`
	ViolationCount uint64       `json:"violation_count"`
	Violations     []Violation  `json:"violations"`
	Truncated      bool         `json:"truncated,omitempty"`
	Warnings       []string     `json:"warnings,omitempty"`
	// Genesis describes the genesis the history starts with, if any: a
	// group migrated from an older generation.
	Genesis *GenesisReport `json:"genesis,omitempty"`
	Elapsed time.Duration  `json:"-"`

	// Unplaceable lists the unowned spans, longer than MaxUnowned, of
	// partitions that no eligible member was allowed to own when they lost
	// their owner (or were declared): their constraint required labels no
	// eligible member carried. A separate finding, not a violation.
	Unplaceable []UnplaceableSpan `json:"unplaceable,omitempty"`
	// MaxHeartbeatGap is the bound HeartbeatGaps were found with ("" or
	// "0s": not checked); HeartbeatGaps lists the spans longer than it
	// without any heartbeat while the group had live members (a finding,
	// not a violation; see audit_gaps.go).
	MaxHeartbeatGap string         `json:"max_heartbeat_gap,omitempty"`
	HeartbeatGaps   []HeartbeatGap `json:"heartbeat_gaps,omitempty"`
}

// ReasonCount counts records by reason.
type ReasonCount struct {
	Reason string `json:"reason"`
	Count  uint64 `json:"count"`
}

// DecisionCounts counts decisions by outcome.
type DecisionCounts struct {
	Accepted uint64 `json:"accepted"`
	Rejected uint64 `json:"rejected"`
}

// RejectedDecision is a decision the fold rejected at its position.
type RejectedDecision struct {
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	Generation uint64    `json:"gen"`
	Leader     string    `json:"leader"`
	BasedOn    uint64    `json:"based_on"`
	Reason     string    `json:"reason"`
}

// RemovalCounts counts removals.
type RemovalCounts struct {
	Total          uint64 `json:"total"`
	VerdictFound   uint64 `json:"verdict_found"`
	VerdictMissing uint64 `json:"verdict_missing"`
	// Repeated counts second removals of an incarnation already removed
	// (information: whoever sees a verdict appends the removal, unfenced).
	Repeated uint64 `json:"repeated,omitempty"`
}

// UnownedSpan is a span during which a partition had no owner.
type UnownedSpan struct {
	Partition string   `json:"partition"`
	From      Position `json:"from"`
	To        Position `json:"to"`
	Duration  string   `json:"duration"`
	// Approximate is set when server timestamps stepped backwards during
	// the span.
	Approximate bool `json:"approximate,omitempty"`
	// Open is set for a span still open at the end of the history.
	Open bool          `json:"open,omitempty"`
	dur  time.Duration `json:"-"`
}

// CheckCounts says how invariants were checked.
type CheckCounts struct {
	// Full counts runs of decider.CheckInvariants on the whole state;
	// Every is the interval in log records (1: after every record).
	Full  uint64 `json:"full"`
	Every int    `json:"every"`
	// Incremental counts records after which the incremental checks ran.
	Incremental uint64 `json:"incremental"`
}

// Violation kinds.
const (
	// ViolationInvariant: decider.CheckInvariants (or its incremental
	// equivalent) failed.
	ViolationInvariant = "invariant"
	// ViolationToken: a partition's fencing token did not increase.
	ViolationToken = "token"
	// ViolationHandoff: a partition passed to a new owner while its
	// previous owner neither released it nor was removed (two owners), or
	// to a member that was not the move's target, or was given an owner
	// without a decision.
	ViolationHandoff = "handoff"
	// ViolationBasedOn: an accepted decision was not computed on the log
	// position just before it.
	ViolationBasedOn = "based-on"
	// ViolationUnowned: a partition stayed unowned longer than the bound.
	ViolationUnowned = "unowned"
	// ViolationSequence: a record's sequence did not increase.
	ViolationSequence = "sequence"
	// ViolationVerdict: a verdict or a removal names the wrong member.
	ViolationVerdict = "verdict"
	// ViolationNewer: a record of a protocol version the group was not at
	// (junk: the fold skips it). A valid version-set event above this
	// build's version is not a violation: the audit stops there, with a
	// warning.
	ViolationNewer = "newer-protocol"
	// ViolationGenesis: a genesis that did not apply (not at the start of
	// the log, a hash or invariant that does not check), or that does not
	// carry the previous generation's fold (AuditOptions.Previous).
	ViolationGenesis = "genesis"
)

// Violation is one broken rule.
type Violation struct {
	Kind      string    `json:"kind"`
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Partition string    `json:"partition,omitempty"`
	Message   string    `json:"message"`
	// Approximate marks a duration measured across timestamps that
	// stepped backwards.
	Approximate bool `json:"approximate,omitempty"`
	// Repeats counts later records at which the same invariant failed
	// again (reported once).
	Repeats uint64 `json:"repeats,omitempty"`
}

// plist lists the partitions a member ID owns and those moving to it.
type plist struct{ owned, targeted []uint32 }

type pendingDecision struct {
	basedOn, prev uint64
}

type verdictInfo struct {
	subjMember string
	subjInc    uint64
}

// auditor follows every partition of the fold with a few slices indexed by
// partition, and, for each member ID, the partitions it owns or receives:
// each record then costs work in proportion to what it can change, not to
// the number of partitions.
type auditor struct {
	f    *folder
	opts AuditOptions
	rep  *AuditReport

	ids      []string // the declared set the slices below follow
	shadow   []decider.Ownership
	lastTok  []uint64
	since    []int64 // unix nanoseconds the partition became unowned
	sinceSeq []uint64
	sinceBk  []uint64 // time steps back counted then
	opos     []int32  // position in its owner's plist.owned
	tpos     []int32  // position in its target's plist.targeted
	opl      []*plist // its owner's plist (nil: unowned)
	tpl      []*plist // its target's plist (nil: no move)
	byID     map[string]*plist
	lastID   string // a one-entry cache in front of byID
	lastPL   *plist
	dropTok  map[string]uint64            // last token of partitions no longer declared
	unplaced map[string]bool              // unowned spans that began unplaceable (audit_placement.go)
	dropOwn  map[string]decider.Ownership // their ownership when dropped, if owned

	mark  []uint64 // bitset: partition already in dirty
	dirty []uint32
	full  bool // compare every partition after this record

	every       int
	sinceFull   int
	logRecords  uint64
	prevSeq     uint64
	prevLogSeq  uint64
	prevTime    time.Time
	lastTime    time.Time
	backSteps   uint64
	decision    *pendingDecision
	verdicts    map[uint64]verdictInfo
	relTok      map[uint32]uint64 // the entries of a large release being audited
	relDup      bool              // ... which names a partition twice
	seenInv     map[string]int    // normalized invariant message → index in Violations
	ignored     map[string]uint64
	skipped     map[string]uint64
	newerSeen   bool
	missingShow int
	gaps        gaps // heartbeat gaps (audit_gaps.go)

	// What the findings of findings.go need.
	logSeqs    []uint64          // every log record's sequence, increasing
	hbSeqs     []uint64          // every heartbeat-subject record's that is not a verdict
	verdictOn  map[string]uint64 // heartbeat subject → its first verdict's sequence
	removed    map[string]uint64 // incarnation → its first removal's sequence
	forced     map[string]uint64 // incarnation → the force-expire naming it
	unaudited  uint64            // log records after the group moved to a newer version
	otherShown int               // records of other subjects listed
}

// Audit folds the whole history of src and checks it against the
// invariants; see AuditReport and the Violation kinds. It reads every
// subject (heartbeats and verdicts too) when the source has them.
func Audit(ctx context.Context, src Source, opts AuditOptions) (*AuditReport, error) {
	start := time.Now()
	a := newAuditor(src, opts)
	err := src.Scan(ctx, ScanOptions{SkipHeaders: true}, a.record)
	if err != nil {
		return nil, err
	}
	if opts.Previous != nil {
		if err := a.checkPrevious(ctx, opts.Previous); err != nil {
			return nil, err
		}
	}
	a.finish()
	a.rep.Elapsed = time.Since(start)
	return a.rep, nil
}

// newAuditor returns an auditor of src's history, before its first record.
func newAuditor(src Source, opts AuditOptions) *auditor {
	if opts.MaxListed <= 0 {
		opts.MaxListed = 1000
	}
	a := &auditor{
		f:    newFolder(src.Subjects()),
		opts: opts,
		rep: &AuditReport{
			Group: src.Subjects().Group, Source: src.String(),
			MaxUnowned: opts.MaxUnowned.String(),
			Rejected:   []RejectedDecision{}, Violations: []Violation{},
			IgnoredByReason: []ReasonCount{}, SkippedByReason: []ReasonCount{},
		},
		byID:      map[string]*plist{},
		dropTok:   map[string]uint64{},
		dropOwn:   map[string]decider.Ownership{},
		verdicts:  map[uint64]verdictInfo{},
		seenInv:   map[string]int{},
		verdictOn: map[string]uint64{},
		removed:   map[string]uint64{},
		forced:    map[string]uint64{},
		ignored:   map[string]uint64{},
		skipped:   map[string]uint64{},
	}
	a.setEvery()
	if a.gaps.max = opts.MaxHeartbeatGap; a.gaps.max > 0 {
		a.rep.MaxHeartbeatGap = opts.MaxHeartbeatGap.String()
	}
	return a
}

func (a *auditor) setEvery() {
	a.every = a.opts.CheckEvery
	if a.every <= 0 {
		a.every = 1
		if n := len(a.ids); n > 64 {
			a.every = 16 * n
		}
	}
	a.rep.Checks.Every = a.every
}

func (a *auditor) violate(v Violation) {
	a.rep.ViolationCount++
	if len(a.rep.Violations) >= a.opts.MaxListed {
		a.rep.Truncated = true
		return
	}
	a.rep.Violations = append(a.rep.Violations, v)
}

// invariant reports a failed invariant once per distinct message (numbers
// aside): a broken state usually stays broken for many records.
func (a *auditor) invariant(r *events.Record, msg string) {
	key := normalize(msg)
	if i, ok := a.seenInv[key]; ok {
		if i >= 0 {
			a.rep.Violations[i].Repeats++
		}
		return
	}
	i := -1
	if len(a.rep.Violations) < a.opts.MaxListed {
		i = len(a.rep.Violations)
	}
	a.seenInv[key] = i
	a.violate(Violation{Kind: ViolationInvariant, Seq: r.Seq, Time: r.Time, Message: msg})
}

// normalize replaces runs of digits with '#'.
func normalize(s string) string {
	var b strings.Builder
	digit := false
	for _, c := range s {
		if c >= '0' && c <= '9' {
			if !digit {
				b.WriteByte('#')
			}
			digit = true
			continue
		}
		digit = false
		b.WriteRune(c)
	}
	return b.String()
}

func (a *auditor) record(r *events.Record) error {
	f := a.f
	if f.reads.Records == 0 {
		a.rep.First = Position{Seq: r.Seq, Time: r.Time}
	}
	kind := f.count(r)
	a.rep.Last = Position{Seq: r.Seq, Time: r.Time}
	if f.reads.Records > 1 {
		if r.Seq <= a.prevSeq {
			a.violate(Violation{Kind: ViolationSequence, Seq: r.Seq, Time: r.Time,
				Message: fmt.Sprintf("sequence %d follows %d: a stream's sequences only increase (the history was edited or spliced)", r.Seq, a.prevSeq)})
		}
		if r.Time.Before(a.prevTime) {
			a.backSteps++
		}
	}
	a.prevSeq, a.prevTime = r.Seq, r.Time
	if r.Time.After(a.lastTime) {
		a.lastTime = r.Time
	}
	switch kind {
	case events.SubjectLog:
		a.logRecord(r)
		a.gapLog(r)
	case events.SubjectHeartbeat:
		a.gapHeartbeat(r)
		if v, ok := r.Event.(*events.ExpiryVerdict); ok {
			_, member, inc := f.subj.Parse(r.Subject)
			a.verdicts[r.Seq] = verdictInfo{subjMember: member, subjInc: inc}
			if a.verdictOn[r.Subject] == 0 {
				a.verdictOn[r.Subject] = r.Seq
			}
			if v.Member != member || v.Incarnation != inc {
				a.violate(Violation{Kind: ViolationVerdict, Seq: r.Seq, Time: r.Time,
					Message: fmt.Sprintf("verdict on %s names %s", r.Subject, MemberRef(v.Member, v.Incarnation))})
			}
		} else {
			a.hbSeqs = append(a.hbSeqs, r.Seq)
			a.heartbeatFinding(r)
		}
	default:
		a.otherFinding(r)
	}
	return nil
}

func (a *auditor) logRecord(r *events.Record) {
	f, s := a.f, a.f.s
	if s.NewerVersionAt != 0 {
		// The group moved to a version this build cannot read: what
		// follows is not audited (a warning says so).
		a.unaudited++
		return
	}
	a.logRecords++
	a.logSeqs = append(a.logSeqs, r.Seq)
	// What the record may change, known before it is folded.
	a.dirty, a.full = a.dirty[:0], false
	preLen := len(s.Order)
	structural, multiPart := false, false
	switch e := r.Event.(type) {
	case *events.PartitionsReleased:
		for _, rel := range e.Released {
			a.touch(rel.Partition)
		}
		a.indexRelease(e)
	case *events.AssignmentDecided:
		if e.Part == 0 {
			a.decision = &pendingDecision{basedOn: e.BasedOn, prev: a.prevLogSeq}
		}
		if max(e.Parts, 1) == 1 {
			n := 0
			for _, mv := range e.Moves {
				n += min(mv.Parts.Len(), len(a.ids)+1)
			}
			if n > len(a.ids) {
				a.full = true
			} else {
				for _, mv := range e.Moves {
					for k := 0; k+1 < len(mv.Parts); k += 2 {
						for p := uint64(mv.Parts[k]); p <= uint64(mv.Parts[k+1]) && p < uint64(len(a.ids)); p++ {
							a.touch(uint32(p))
						}
					}
				}
			}
		} else {
			multiPart = true // the last part applies every part's moves
		}
	case *events.MemberLeft:
		a.touchMember(e.Member)
		structural = true
	case *events.MemberClosing:
		a.touchMember(e.Member)
		structural = true
	case *events.GraceEnded:
		a.touchMember(e.Member)
		structural = true
	case *events.MemberRemoved:
		a.touchMember(e.Member)
		structural = true
		if a.removalFinding(r, e) {
			a.checkRemoval(r, e)
		}
	case *events.MemberClaimed:
		structural = true
	case *events.OperatorAction:
		structural = true
		if e.Action == events.OpForceExpire && e.Incarnation != 0 {
			if m := s.Incarnation(e.Member, e.Incarnation); m != nil && m.Forced == 0 {
				a.forced[MemberRef(e.Member, e.Incarnation)] = r.Seq
			}
		}
		switch e.Action {
		case events.OpDrain, events.OpCordon, events.OpForceExpire:
			a.touchMember(e.Member)
		case events.OpMove:
			if i, ok := s.PartitionIndex(e.Partition); ok {
				a.touch(i)
			}
		}
	case *events.PartitionsDeclared:
		structural = true
	case *events.Genesis:
		structural = true
		a.genesisPart(r, e)
	}

	out := f.apply(r)
	a.foldFinding(r, out)

	switch out.Kind {
	case decider.Ignored:
		a.ignored[out.Reason]++
	case decider.Skipped:
		a.skipped[out.Reason]++
	case decider.Newer:
		a.newerSeen = true
	case decider.Rejected:
		if e, ok := r.Event.(*events.AssignmentDecided); ok {
			a.rep.Decisions.Rejected++
			if len(a.rep.Rejected) < a.opts.MaxListed {
				a.rep.Rejected = append(a.rep.Rejected, RejectedDecision{Seq: r.Seq, Time: r.Time, Generation: e.Generation,
					Leader: MemberRef(e.Leader, e.LeaderInc), BasedOn: e.BasedOn, Reason: out.Reason})
			} else {
				a.rep.Truncated = true
			}
			a.decision = nil
		}
	case decider.Applied:
		switch e := r.Event.(type) {
		case *events.AssignmentDecided:
			a.full = a.full || multiPart
			a.rep.Decisions.Accepted++
			if d := a.decision; d != nil && d.basedOn != d.prev {
				a.violate(Violation{Kind: ViolationBasedOn, Seq: r.Seq, Time: r.Time,
					Message: fmt.Sprintf("decision gen %d was accepted although it was computed on seq %d and the log before it ended at seq %d", e.Generation, d.basedOn, d.prev)})
			}
			a.decision = nil
		case *events.MemberClaimed:
			// A grant that superseded a closing incarnation of the same
			// ID takes its partitions over: the order did not grow.
			if len(s.Order) == preLen && len(s.Order) > 0 {
				if m := s.Members[s.Order[len(s.Order)-1]]; m.JoinSeq == r.Seq {
					a.touchMember(m.ID)
				}
			}
		case *events.PartitionsDeclared:
			a.redeclare(r)
		case *events.Genesis:
			a.genesisStart(r)
		}
	}
	if e, ok := r.Event.(*events.Genesis); ok && out.Kind != decider.Applied && out.Kind != decider.Partial {
		a.genesisRefused(r, e, out)
	}
	if out.Kind != decider.Partial {
		if _, ok := r.Event.(*events.AssignmentDecided); !ok {
			// A decision's parts must be contiguous: anything else
			// ends a pending one.
			a.decision = nil
		}
	}
	a.prevLogSeq = r.Seq

	if a.full {
		for p := range a.ids {
			a.change(uint32(p), r)
		}
	} else {
		for _, p := range a.dirty {
			a.mark[p>>6] &^= 1 << (p & 63)
			a.change(p, r)
		}
	}
	a.rep.Checks.Incremental++
	if structural {
		a.checkMembers(r)
	}
	a.sinceFull++
	if a.sinceFull >= a.every {
		a.fullCheck(r)
	}
	if a.opts.verifyEvery > 0 && a.logRecords%uint64(a.opts.verifyEvery) == 0 {
		a.verify(r)
	}
}

// touch adds partition p to the records' dirty set.
func (a *auditor) touch(p uint32) {
	if int(p) >= len(a.ids) || a.mark[p>>6]&(1<<(p&63)) != 0 {
		return
	}
	a.mark[p>>6] |= 1 << (p & 63)
	a.dirty = append(a.dirty, p)
}

// touchMember adds every partition member id owns or receives.
func (a *auditor) touchMember(id string) {
	pl := a.byID[id]
	if pl == nil {
		return
	}
	for _, p := range pl.owned {
		a.touch(p)
	}
	for _, p := range pl.targeted {
		a.touch(p)
	}
}

// change checks partition p after record r against the audit's view of it
// and takes the new ownership in.
func (a *auditor) change(p uint32, r *events.Record) {
	s := a.f.s
	old, now := a.shadow[p], s.Owners[p]
	if old == now {
		return
	}
	a.onChange(p, old, now, r)
	a.relist(p, old, now)
	a.shadow[p] = now
	a.checkOwnership(p, r)
}

func (a *auditor) onChange(p uint32, old, now decider.Ownership, r *events.Record) {
	id := a.ids[p]
	newOwnership := now.Owner != "" && (now.Owner != old.Owner || now.Inc != old.Inc || now.Token != old.Token)
	if newOwnership {
		if now.Token <= a.lastTok[p] {
			a.violate(Violation{Kind: ViolationToken, Seq: r.Seq, Time: r.Time, Partition: id,
				Message: fmt.Sprintf("the fencing token of %s went from %d to %d (%s took it over): tokens must strictly increase, or storage would take a stale owner's writes", id, a.lastTok[p], now.Token, MemberRef(now.Owner, now.Inc))})
		} else {
			a.lastTok[p] = now.Token
		}
	}
	lost := old.Owner != "" && (now.Owner != old.Owner || now.Inc != old.Inc)
	if lost {
		legit := false
		switch e := r.Event.(type) {
		case *events.PartitionsReleased:
			legit = e.Member == old.Owner && e.Incarnation == old.Inc && a.releases(e, p, old.Token)
		case *events.MemberRemoved:
			legit = e.Member == old.Owner && e.Incarnation == old.Inc
		case *events.GraceEnded:
			legit = e.Member == old.Owner && e.Incarnation == old.Inc
		case *events.OperatorAction:
			legit = e.Action == events.OpForceExpire && e.Member == old.Owner
		case *events.MemberClaimed, *events.MemberClosing:
			legit = now.Owner == old.Owner && now.Inc > old.Inc
		}
		switch {
		case !legit:
			a.violate(Violation{Kind: ViolationHandoff, Seq: r.Seq, Time: r.Time, Partition: id,
				Message: fmt.Sprintf("%s passed from %s to %s at a %s although %s neither released it nor was removed: two owners", id, MemberRef(old.Owner, old.Inc), ownerOrNobody(now), eventName(r), MemberRef(old.Owner, old.Inc))})
		case now.Owner != "" && now.Owner != old.Owner && (old.Target != now.Owner || old.TargetInc != now.Inc):
			a.violate(Violation{Kind: ViolationHandoff, Seq: r.Seq, Time: r.Time, Partition: id,
				Message: fmt.Sprintf("%s passed from %s to %s, which was not the move's target (%s)", id, MemberRef(old.Owner, old.Inc), MemberRef(now.Owner, now.Inc), ownerOrNobody(decider.Ownership{Owner: old.Target, Inc: old.TargetInc}))})
		}
	}
	if old.Owner == "" && now.Owner != "" {
		legit := false
		switch e := r.Event.(type) {
		case *events.AssignmentDecided:
			legit = true
		case *events.OperatorAction:
			legit = e.Action == events.OpMove
		}
		if !legit {
			a.violate(Violation{Kind: ViolationHandoff, Seq: r.Seq, Time: r.Time, Partition: id,
				Message: fmt.Sprintf("%s was given to %s by a %s, not by a decision", id, MemberRef(now.Owner, now.Inc), eventName(r))})
		}
		a.endUnowned(p, r.Seq, r.Time, false)
	}
	if old.Owner != "" && now.Owner == "" {
		a.startUnowned(p, r)
	}
}

func ownerOrNobody(o decider.Ownership) string {
	if o.Owner == "" {
		return "nobody"
	}
	return MemberRef(o.Owner, o.Inc)
}

// indexRelease indexes a large release's entries for releases.
func (a *auditor) indexRelease(e *events.PartitionsReleased) {
	a.relDup = false
	if len(e.Released) <= 8 {
		return
	}
	if a.relTok == nil {
		a.relTok = map[uint32]uint64{}
	}
	clear(a.relTok)
	for _, rel := range e.Released {
		if _, dup := a.relTok[rel.Partition]; dup {
			a.relDup = true
		}
		a.relTok[rel.Partition] = rel.Token
	}
}

// releases reports whether e (the record being audited) has an entry that
// releases partition p with token tok.
func (a *auditor) releases(e *events.PartitionsReleased, p uint32, tok uint64) bool {
	if len(e.Released) > 8 && !a.relDup {
		t, ok := a.relTok[p]
		return ok && t == tok
	}
	for _, rel := range e.Released {
		if rel.Partition == p && rel.Token == tok {
			return true
		}
	}
	return false
}

func (a *auditor) startUnowned(p uint32, r *events.Record) {
	a.since[p], a.sinceSeq[p], a.sinceBk[p] = r.Time.UnixNano(), r.Seq, a.backSteps
	a.markUnplaceable(a.f.s, int(p))
}

// endUnowned ends partition p's unowned span at (seq, t).
func (a *auditor) endUnowned(p uint32, seq uint64, t time.Time, open bool) {
	d := time.Duration(t.UnixNano() - a.since[p])
	approx := a.backSteps != a.sinceBk[p]
	if d < 0 {
		d, approx = 0, true
	}
	longest := a.rep.LongestUnowned == nil || d > a.rep.LongestUnowned.dur
	over := a.opts.MaxUnowned > 0 && d > a.opts.MaxUnowned
	if !longest && !over {
		return // the common case: nothing to build
	}
	if longest {
		a.rep.LongestUnowned = &UnownedSpan{
			Partition: a.ids[p],
			From:      Position{Seq: a.sinceSeq[p], Time: time.Unix(0, a.since[p]).UTC()},
			To:        Position{Seq: seq, Time: t},
			Duration:  fmtDuration(d), Approximate: approx, Open: open, dur: d,
		}
	}
	if over && a.unplaceableSpan(p, seq, t, d, open) {
		return // a separate finding, not a violation of the bound
	}
	if over {
		what := "until seq %d"
		if open {
			what = "until the end of the history (seq %d)"
		}
		msg := fmt.Sprintf("%s was unowned for %s, from seq %d "+what+", longer than the bound %v", a.ids[p], fmtDuration(d), a.sinceSeq[p], seq, a.opts.MaxUnowned)
		if approx {
			msg += " (approximate: server timestamps stepped backwards meanwhile)"
		}
		a.violate(Violation{Kind: ViolationUnowned, Seq: seq, Time: t, Partition: a.ids[p], Message: msg, Approximate: approx})
	}
}

// relist moves p between the members' lists.
func (a *auditor) relist(p uint32, old, now decider.Ownership) {
	if old.Owner != now.Owner {
		if pl := a.opl[p]; pl != nil {
			listRemove(&pl.owned, a.opos, p)
			a.opl[p] = nil
		}
		if now.Owner != "" {
			pl := a.list(now.Owner)
			listAdd(&pl.owned, a.opos, p)
			a.opl[p] = pl
		}
	}
	if old.Target != now.Target {
		if pl := a.tpl[p]; pl != nil {
			listRemove(&pl.targeted, a.tpos, p)
			a.tpl[p] = nil
		}
		if now.Target != "" {
			pl := a.list(now.Target)
			listAdd(&pl.targeted, a.tpos, p)
			a.tpl[p] = pl
		}
	}
}

func (a *auditor) list(id string) *plist {
	if a.lastPL != nil && a.lastID == id {
		return a.lastPL
	}
	pl := a.byID[id]
	if pl == nil {
		pl = &plist{}
		a.byID[id] = pl
	}
	a.lastID, a.lastPL = id, pl
	return pl
}

func listAdd(l *[]uint32, pos []int32, p uint32) {
	pos[p] = int32(len(*l))
	*l = append(*l, p)
}

func listRemove(l *[]uint32, pos []int32, p uint32) {
	i := pos[p]
	if i < 0 || int(i) >= len(*l) || (*l)[i] != p {
		return // not listed: the lists are rebuilt at the next declaration
	}
	last := len(*l) - 1
	moved := (*l)[last]
	(*l)[i] = moved
	pos[moved] = i
	*l = (*l)[:last]
	pos[p] = -1
}

// checkOwnership runs decider.CheckPartition on partition p, the invariants
// a record changing it can break.
func (a *auditor) checkOwnership(p uint32, r *events.Record) {
	for _, err := range decider.CheckPartition(a.f.s, int(p)) {
		a.invariant(r, err.Error())
	}
}

// checkMembers runs decider.CheckMembers after a record that changed the
// membership: O(members).
func (a *auditor) checkMembers(r *events.Record) {
	for _, err := range decider.CheckMembers(a.f.s) {
		a.invariant(r, err.Error())
	}
}

// fullCheck runs decider.CheckInvariants on the whole state.
func (a *auditor) fullCheck(r *events.Record) {
	a.sinceFull = 0
	a.rep.Checks.Full++
	if err := decider.CheckInvariants(a.f.s); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			a.invariant(r, line)
		}
	}
}

// verify compares the audit's view with the state (tests).
func (a *auditor) verify(r *events.Record) {
	s := a.f.s
	for p := range a.ids {
		if a.shadow[p] != s.Owners[p] {
			panic(fmt.Sprintf("replay: audit missed a change of partition %d at seq %d (%s): tracked %+v, state %+v", p, r.Seq, eventName(r), a.shadow[p], s.Owners[p]))
		}
	}
	for id, pl := range a.byID {
		for _, p := range pl.owned {
			if s.Owners[p].Owner != id {
				panic(fmt.Sprintf("replay: audit lists partition %d under %s at seq %d", p, id, r.Seq))
			}
		}
	}
}

// redeclare follows a new declared set: every slice is rebuilt by
// partition ID. Rare (a declaration), so it may cost O(partitions).
func (a *auditor) redeclare(r *events.Record) {
	s := a.f.s
	oldIdx := make(map[string]int, len(a.ids))
	for i, id := range a.ids {
		oldIdx[id] = i
	}
	n := len(s.Partitions)
	shadow := make([]decider.Ownership, n)
	lastTok := make([]uint64, n)
	since := make([]int64, n)
	sinceSeq := make([]uint64, n)
	sinceBk := make([]uint64, n)
	kept := make([]bool, len(a.ids))
	for i, id := range s.Partitions {
		if j, ok := oldIdx[id]; ok {
			kept[j] = true
			shadow[i], lastTok[i], since[i], sinceSeq[i], sinceBk[i] = a.shadow[j], a.lastTok[j], a.since[j], a.sinceSeq[j], a.sinceBk[j]
			continue
		}
		lastTok[i] = a.dropTok[id]
		delete(a.dropTok, id)
		since[i], sinceSeq[i], sinceBk[i] = r.Time.UnixNano(), r.Seq, a.backSteps
		a.markUnplaceable(s, i)
		// A partition dropped while owned was never released: declared
		// again, it goes back to that owner if it is still a member (the
		// decider's State.Retired); the comparison below then sees a new
		// token, not a new owner.
		if o, ok := a.dropOwn[id]; ok && s.Incarnation(o.Owner, o.Inc) != nil {
			shadow[i] = o
		}
		delete(a.dropOwn, id)
	}
	for j, id := range a.ids {
		if kept[j] {
			continue
		}
		a.dropTok[id] = a.lastTok[j]
		if o := a.shadow[j]; o.Owner == "" {
			a.endUnowned(uint32(j), r.Seq, r.Time, false)
		} else {
			a.dropOwn[id] = decider.Ownership{Owner: o.Owner, Inc: o.Inc, Token: o.Token}
		}
	}
	a.ids, a.shadow, a.lastTok, a.since, a.sinceSeq, a.sinceBk = s.Partitions, shadow, lastTok, since, sinceSeq, sinceBk
	a.opos = slices.Repeat([]int32{-1}, n)
	a.tpos = slices.Repeat([]int32{-1}, n)
	a.mark = make([]uint64, (n+63)/64)
	a.opl = make([]*plist, n)
	a.tpl = make([]*plist, n)
	clear(a.byID)
	a.lastID, a.lastPL = "", nil
	for p := range shadow {
		a.relist(uint32(p), decider.Ownership{}, shadow[p])
	}
	a.dirty, a.full = a.dirty[:0], true // compare all with the state
	if a.opts.CheckEvery <= 0 {
		a.setEvery()
	}
	a.sinceFull = a.every // and check the whole state now
}

// checkRemoval checks a removal against the verdict it cites.
func (a *auditor) checkRemoval(r *events.Record, e *events.MemberRemoved) {
	a.rep.Removals.Total++
	if e.VerdictSeq == 0 {
		return
	}
	v, ok := a.verdicts[e.VerdictSeq]
	switch {
	case e.VerdictSeq >= r.Seq:
		a.violate(Violation{Kind: ViolationVerdict, Seq: r.Seq, Time: r.Time,
			Message: fmt.Sprintf("the removal of %s cites verdict seq %d, which is not before it", MemberRef(e.Member, e.Incarnation), e.VerdictSeq)})
	case !ok:
		a.rep.Removals.VerdictMissing++
	case v.subjMember != e.Member || v.subjInc != e.Incarnation:
		a.rep.Removals.VerdictFound++
		a.violate(Violation{Kind: ViolationVerdict, Seq: r.Seq, Time: r.Time,
			Message: fmt.Sprintf("the removal of %s cites verdict seq %d, a verdict on %s", MemberRef(e.Member, e.Incarnation), e.VerdictSeq, MemberRef(v.subjMember, v.subjInc))})
	default:
		a.rep.Removals.VerdictFound++
	}
}

func (a *auditor) finish() {
	a.gapEnd()
	s := a.f.s
	end := a.rep.Last
	if len(a.ids) > 0 {
		for p := range a.ids {
			if a.shadow[p].Owner == "" {
				a.endUnowned(uint32(p), end.Seq, a.lastTime, true)
			}
		}
	}
	if a.logRecords > 0 {
		a.fullCheck(&events.Record{Seq: a.f.last.Seq, Time: a.f.last.Time})
	}
	a.rep.Reads = a.f.reads
	a.rep.Fold = s.Counters
	a.rep.TimeStepsBack = a.backSteps
	a.rep.Final = summarize(s)
	a.rep.IgnoredByReason = reasonCounts(a.ignored)
	a.rep.SkippedByReason = reasonCounts(a.skipped)
	if a.newerSeen {
		a.rep.Warnings = append(a.rep.Warnings, fmt.Sprintf("the group moved to protocol version %d at log seq %d, above this build's %d: members of this build stop there; the %d log records after it were not audited (use a newer build)", s.Protocol, s.NewerVersionAt, events.MaxVersion, a.unaudited))
	}
	if a.rep.Removals.VerdictMissing > 0 {
		a.rep.Warnings = append(a.rep.Warnings, fmt.Sprintf("%d removals cite a verdict that is not in the history (an export of the log subject alone has none)", a.rep.Removals.VerdictMissing))
	}
	a.rep.Clean = a.rep.ViolationCount == 0
}

func reasonCounts(m map[string]uint64) []ReasonCount {
	out := make([]ReasonCount, 0, len(m))
	for r, n := range m {
		out = append(out, ReasonCount{Reason: r, Count: n})
	}
	slices.SortFunc(out, func(x, y ReasonCount) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Reason, y.Reason))
	})
	return out
}
