package replay

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// The text forms of the reports, as parti-replay prints them by default.
// Every report also marshals to JSON (its fields' tags); the text is for
// people and may change, the JSON is for scripts.

// MaxTextRows bounds the rows of a long table in text output; JSON output
// lists everything.
const MaxTextRows = 50

// textWriter collects the first write error.
type textWriter struct {
	w   io.Writer
	err error
}

func (t *textWriter) f(format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, args...)
	}
}

func (t *textWriter) table(write func(tw *tabwriter.Writer)) {
	if t.err != nil {
		return
	}
	tw := tabwriter.NewWriter(t.w, 0, 0, 2, ' ', 0)
	write(tw)
	t.err = tw.Flush()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(TimeFormat)
}

func fmtPos(p Position) string {
	if p.Seq == 0 {
		return "the start (no record)"
	}
	return fmt.Sprintf("seq %d (%s)", p.Seq, fmtTime(p.Time))
}

// protocolText says which protocol rules apply: a group whose protocol was
// never set runs version 1's.
func protocolText(v uint16) string {
	if v == 0 {
		return "1 (not set yet: version 1 rules)"
	}
	return fmt.Sprint(v)
}

// plural formats n with the singular or the plural noun.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// WriteText writes the state in text form; with partitions, every
// partition's owner even when there are more than MaxTextRows.
func (r *StateReport) WriteText(w io.Writer, partitions bool) error {
	t := &textWriter{w: w}
	s := r.State
	t.f("group %s, state at %s", r.Group, fmtPos(r.At))
	if r.Requested != "end" {
		t.f(", requested %s", r.Requested)
	}
	if r.ReadAll {
		t.f("\nsource: %s; history ends at %s\n", r.Source, fmtPos(r.End))
	} else {
		t.f("\nsource: %s; read up to %s (the history goes on)\n", r.Source, fmtPos(r.End))
	}
	if r.At.Seq == 0 {
		t.f("no log record at or before the point: the group has no history there yet\n")
		return t.err
	}
	t.f("phase %s, generation %d, protocol %s, leader %s\n", r.Phase, s.Generation, protocolText(s.Protocol), orNone(r.Leader))
	strat := s.Strategy
	if strat == "" {
		strat = "default"
	}
	t.f("partitions: %d declared (version %d, strategy %s), %d unowned, %d moving\n", len(s.Partitions), s.DeclVersion, strat, r.Unowned, r.InFlight)
	window := "closed"
	if s.Window {
		window = fmt.Sprintf("open since seq %d (%s)", s.WindowSince, s.WindowReason)
	}
	rebal := "on"
	if s.Paused {
		rebal = "paused"
	}
	t.f("window: %s; rebalancing: %s\n", window, rebal)
	t.f("members (%d):\n", len(r.Loads))
	if len(r.Loads) > 0 {
		t.table(func(tw *tabwriter.Writer) {
			fmt.Fprintf(tw, "  MEMBER\tJOINED\tSTATUS\tOWNED\tINCOMING\tOUTGOING\n")
			for _, l := range r.Loads {
				fmt.Fprintf(tw, "  %s\t%d\t%s\t%d\t%d\t%d\n", l.Member, l.JoinSeq, l.Status, l.Owned, l.Incoming, l.Outgoing)
			}
		})
	}
	if len(s.Pending) > 0 {
		t.f("claims waiting (%d):\n", len(s.Pending))
		for _, c := range s.Pending {
			t.f("  %s (nonce %s, seq %d)\n", c.ID, c.Nonce, c.Seq)
		}
	}
	writePlacement(t, r) // labels, constraints, unplaceable (placement_text.go)
	c := s.Counters
	t.f("fold: %d applied, %d skipped, %d ignored, %d rejected\n", c.Applied, c.Skipped, c.Ignored, c.Rejected)
	if lr := s.LastRejection; lr != nil {
		t.f("last rejected decision: seq %d, gen %d: %s\n", lr.Seq, lr.Generation, lr.Reason)
	}
	if s.NewerVersionAt != 0 {
		t.f("a record of a newer protocol version at seq %d: members stop acting there\n", s.NewerVersionAt)
	}
	n := len(s.Partitions)
	switch {
	case n == 0:
	case n > MaxTextRows && !partitions:
		t.f("partitions: %d (use --partitions or --json to list them, explain to follow one)\n", n)
	default:
		t.f("partitions:\n")
		t.table(func(tw *tabwriter.Writer) {
			fmt.Fprintf(tw, "  INDEX\tPARTITION\tOWNER\tTOKEN\tMOVING TO\n")
			for i, id := range s.Partitions {
				o := s.Owners[i]
				own, tok := "-", "-"
				if o.Owner != "" {
					own, tok = MemberRef(o.Owner, o.Inc), fmt.Sprint(o.Token)
				}
				fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", i, id, own, tok, orDash(MemberRef(o.Target, o.TargetInc)))
			}
		})
	}
	return t.err
}

func times(n uint64) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteText writes the partition's history in text form.
func (e *Explanation) WriteText(w io.Writer) error {
	t := &textWriter{w: w}
	t.f("partition %s of group %s: %s\n", e.Partition, e.Group, plural(len(e.Changes), "change", "changes"))
	if e.Index >= 0 {
		t.f("at the end (%s): index %d, %s\n", fmtPos(e.End), e.Index, describeOwnership(e.Final))
	} else {
		t.f("at the end (%s): not declared\n", fmtPos(e.End))
	}
	for _, c := range e.Changes {
		t.f("\nseq %d  %s  %s  %s\n", c.Seq, fmtTime(c.Time), c.Event, c.Kind)
		t.f("  %s\n", c.Why)
		if c.Kind != "rejected" && c.Kind != "ignored" {
			t.f("  %s  =>  %s\n", describeOwnership(c.Before), describeOwnership(c.After))
		}
	}
	return t.err
}

// WriteText writes the difference in text form.
func (d *DiffReport) WriteText(w io.Writer) error {
	t := &textWriter{w: w}
	t.f("group %s: %s → %s\n", d.Group, fmtPos(d.A), fmtPos(d.B))
	t.f("requested %s → %s; source: %s\n", d.RequestedA, d.RequestedB, d.Source)
	t.table(func(tw *tabwriter.Writer) {
		a, b := d.Before, d.After
		fmt.Fprintf(tw, "  \tA\tB\n")
		row := func(name string, x, y any) { fmt.Fprintf(tw, "  %s\t%v\t%v\n", name, x, y) }
		row("phase", a.Phase, b.Phase)
		row("leader", orNone(a.Leader), orNone(b.Leader))
		row("generation", a.Generation, b.Generation)
		row("protocol", protocolText(a.Protocol), protocolText(b.Protocol))
		row("members", a.Members, b.Members)
		row("partitions", fmt.Sprintf("%d (v%d)", a.Partitions, a.DeclVersion), fmt.Sprintf("%d (v%d)", b.Partitions, b.DeclVersion))
		row("strategy", orDash(a.Strategy), orDash(b.Strategy))
		row("unowned", a.Unowned, b.Unowned)
		row("moving", a.InFlight, b.InFlight)
		row("window open", a.Window, b.Window)
		row("paused", a.Paused, b.Paused)
	})
	list := func(name string, xs []string) {
		if len(xs) == 0 {
			t.f("%s: none\n", name)
			return
		}
		shown := xs
		if len(shown) > MaxTextRows {
			shown = shown[:MaxTextRows]
		}
		t.f("%s (%d): %s", name, len(xs), strings.Join(shown, ", "))
		if len(shown) < len(xs) {
			t.f(", … (--json lists all)")
		}
		t.f("\n")
	}
	list("members joined", d.Joined)
	list("members left", d.Left)
	if len(d.StatusChanged) == 0 {
		t.f("status changes: none\n")
	} else {
		t.f("status changes (%d):\n", len(d.StatusChanged))
		for _, c := range d.StatusChanged {
			t.f("  %s: %s → %s\n", c.Member, c.From, c.To)
		}
	}
	list("partitions added", d.Added)
	list("partitions dropped", d.Dropped)
	if len(d.Restarted) > 0 {
		t.f("partitions kept by a restart (same ID, new incarnation, no move): %d\n", len(d.Restarted))
		pairs := map[[2]string]int{}
		var keys [][2]string
		for _, m := range d.Restarted {
			k := [2]string{m.From, m.To}
			if pairs[k] == 0 {
				keys = append(keys, k)
			}
			pairs[k]++
		}
		t.table(func(tw *tabwriter.Writer) {
			for _, k := range keys {
				fmt.Fprintf(tw, "  %s\trestarted as %s\t%d\n", k[0], k[1], pairs[k])
			}
		})
	}
	if len(d.Moves) == 0 {
		t.f("partitions moved: none\n")
		return t.err
	}
	t.f("partitions moved (%d), by owner:\n", len(d.Moves))
	t.table(func(tw *tabwriter.Writer) {
		for _, p := range d.MovesByPair {
			fmt.Fprintf(tw, "  %s\t→ %s\t%d\n", ownerName(p.From), ownerName(p.To), p.Count)
		}
	})
	t.f("partitions moved, one by one:\n")
	t.table(func(tw *tabwriter.Writer) {
		for i, m := range d.Moves {
			if i == MaxTextRows {
				fmt.Fprintf(tw, "  … %d more (--json lists all)\n", len(d.Moves)-i)
				break
			}
			fmt.Fprintf(tw, "  %s\t%s\t→ %s\n", m.Partition, ownerName(m.From), ownerName(m.To))
		}
	})
	return t.err
}

func ownerName(s string) string {
	if s == "" {
		return "(unowned)"
	}
	return s
}

// WriteText writes the audit in text form.
func (a *AuditReport) WriteText(w io.Writer) error {
	t := &textWriter{w: w}
	verdict := "CLEAN"
	switch {
	case a.ViolationCount == 1:
		verdict = "1 VIOLATION"
	case !a.Clean:
		verdict = fmt.Sprintf("%d VIOLATIONS", a.ViolationCount)
	}
	t.f("audit of group %s: %s\n", a.Group, verdict)
	t.f("source: %s\n", a.Source)
	r := a.Reads
	t.f("records: %d read (log %d, heartbeat %d, snapshot %d, other %d), garbage %d\n", r.Records, r.Log, r.Heartbeat, r.Snapshot, r.Other, r.Garbage)
	if r.Records > 0 {
		t.f("from %s to %s\n", fmtPos(a.First), fmtPos(a.Last))
	}
	t.f("fold: %d applied, %d skipped, %d ignored, %d rejected\n", a.Fold.Applied, a.Fold.Skipped, a.Fold.Ignored, a.Fold.Rejected)
	for _, x := range a.SkippedByReason {
		t.f("  skipped: %s ×%d\n", x.Reason, x.Count)
	}
	for _, x := range a.IgnoredByReason {
		t.f("  ignored: %s ×%d\n", x.Reason, x.Count)
	}
	t.f("decisions: %d accepted, %d rejected", a.Decisions.Accepted, a.Decisions.Rejected)
	if a.Decisions.Rejected > 0 {
		t.f(" (information, not violations)")
	}
	t.f("\n")
	for i, d := range a.Rejected {
		if i == MaxTextRows {
			t.f("  … %d more (--json lists them)\n", len(a.Rejected)-i)
			break
		}
		t.f("  rejected: seq %d, gen %d by %s, based on seq %d: %s\n", d.Seq, d.Generation, d.Leader, d.BasedOn, d.Reason)
	}
	t.f("removals: %d (verdict found %d, verdict not in the history %d)\n", a.Removals.Total, a.Removals.VerdictFound, a.Removals.VerdictMissing)
	bound := a.MaxUnowned
	if bound == "0s" {
		bound = "not checked"
	}
	if l := a.LongestUnowned; l != nil {
		approx := ""
		if l.Approximate {
			approx = " (approximate)"
		}
		open := ""
		if l.Open {
			open = ", still unowned at the end"
		}
		t.f("unowned: longest %s%s, %s from seq %d to seq %d%s; bound %s\n", l.Duration, approx, l.Partition, l.From.Seq, l.To.Seq, open, bound)
	} else {
		t.f("unowned: never; bound %s\n", bound)
	}
	writeUnplaceable(t, a.Unplaceable) // audit_placement.go
	if a.MaxHeartbeatGap != "" {
		if len(a.HeartbeatGaps) == 0 {
			t.f("heartbeat gaps: none longer than %s\n", a.MaxHeartbeatGap)
		} else {
			t.f("heartbeat gaps: %d longer than %s with live members and no heartbeat (no member held a lease; was the stream accepting writes?):\n", len(a.HeartbeatGaps), a.MaxHeartbeatGap)
			for i, g := range a.HeartbeatGaps {
				if i == MaxTextRows {
					t.f("  … %d more (--json lists them)\n", len(a.HeartbeatGaps)-i)
					break
				}
				end := fmtPos(g.To)
				if g.Open {
					end += ", the end of the history"
				}
				t.f("  %s from %s to %s\n", g.Duration, fmtPos(g.From), end)
			}
		}
	}
	every := "after every log record"
	if a.Checks.Every > 1 {
		every = fmt.Sprintf("incrementally after every log record, in full every %d", a.Checks.Every)
	}
	t.f("invariants: checked %s (%d full checks)\n", every, a.Checks.Full)
	if a.TimeStepsBack > 0 {
		t.f("time: server timestamps stepped backwards %s; durations across a step are approximate\n", times(a.TimeStepsBack))
	}
	if g := a.Genesis; g != nil {
		t.f("genesis: seq %d", g.Seq)
		if g.Parts > 1 {
			t.f("..%d (%d parts)", g.LastSeq, g.Parts)
		}
		t.f(", from group %s (%s) up to seq %d, hash %s", g.FromGroup, g.FromStream, g.UpTo, g.Hash)
		if g.By != "" {
			t.f(", by %s", g.By)
		}
		if g.Note != "" {
			t.f(" (%s)", g.Note)
		}
		if g.Applied {
			t.f("; applied\n")
		} else {
			t.f("; NOT applied: %s\n", orNone(g.Reason))
		}
		switch {
		case g.Previous == "":
			t.f("  not checked against the old generation (give its history to check it)\n")
		case g.Matches:
			t.f("  matches %s: its fold up to seq %d hashes to %s; its log ends at seq %d\n", g.Previous, g.UpTo, g.PreviousHash, g.PreviousEnd)
		default:
			t.f("  does NOT match %s (see the violations)\n", g.Previous)
		}
	}
	f := a.Final
	t.f("final: phase %s, generation %d, members %d, partitions %d, unowned %d, moving %d\n", f.Phase, f.Generation, f.Members, f.Partitions, f.Unowned, f.InFlight)
	for _, warn := range a.Warnings {
		t.f("warning: %s\n", warn)
	}
	if len(a.Violations) == 0 {
		return t.err
	}
	t.f("violations (%d):\n", a.ViolationCount)
	// One line per record and kind: a record that breaks the rule for 85
	// partitions is one finding with 85 partitions, not 85 lines.
	for i := 0; i < len(a.Violations); {
		v := a.Violations[i]
		tmpl := violationTemplate(v)
		j := i + 1
		for j < len(a.Violations) {
			w := a.Violations[j]
			if w.Seq != v.Seq || w.Kind != v.Kind || w.Partition == "" || violationTemplate(w) != tmpl {
				break
			}
			j++
		}
		rep := ""
		if v.Repeats > 0 {
			rep = fmt.Sprintf(" (and %d more times)", v.Repeats)
		}
		if j-i == 1 {
			t.f("  seq %d  %s  %s: %s%s\n", v.Seq, fmtTime(v.Time), v.Kind, v.Message, rep)
		} else {
			ids := make([]string, 0, j-i)
			for _, w := range a.Violations[i:j] {
				ids = append(ids, w.Partition)
			}
			shown := ids
			more := ""
			if len(shown) > MaxTextRows {
				shown, more = shown[:MaxTextRows], fmt.Sprintf(", … %d more (--json lists them)", len(ids)-MaxTextRows)
			}
			t.f("  seq %d  %s  %s, %d partitions: %s%s\n    %s%s\n", v.Seq, fmtTime(v.Time), v.Kind, j-i, tmpl, rep, strings.Join(shown, ", "), more)
		}
		i = j
	}
	if a.Truncated {
		t.f("  … the list stops at %d entries; all are counted\n", len(a.Violations))
	}
	return t.err
}

// WriteText writes the comparison in text form.
func (r *WhatIfReport) WriteText(w io.Writer) error {
	t := &textWriter{w: w}
	declared := "none"
	if len(r.Declared) > 0 {
		declared = strings.Join(r.Declared, ", ")
	}
	t.f("what-if for group %s: strategy %s (declared: %s), window %s\n", r.Group, r.Strategy, declared, r.Window)
	t.f("source: %s\n", r.Source)
	t.table(func(tw *tabwriter.Writer) {
		a, b := r.Recorded, r.WhatIf
		fmt.Fprintf(tw, "  \trecorded\twhat-if\n")
		fmt.Fprintf(tw, "  decisions\t%d\t%d\n", a.Decisions, b.Decisions)
		fmt.Fprintf(tw, "  partitions moved\t%d\t%d\n", a.Moved, b.Moved)
		fmt.Fprintf(tw, "  partitions placed\t%d\t%d\n", a.Placed, b.Placed)
		fmt.Fprintf(tw, "  final load max/min\t%d/%d\t%d/%d\n", a.FinalMax, a.FinalMin, b.FinalMax, b.FinalMin)
		fmt.Fprintf(tw, "  worst spread max-min\t%d\t%d\n", a.WorstSpread, b.WorstSpread)
	})
	t.f("decision points (%d):\n", len(r.Points))
	if len(r.Points) > 0 {
		t.table(func(tw *tabwriter.Writer) {
			fmt.Fprintf(tw, "  SEQ\tTIME\tREASON\tMOVED rec/wi\tPLACED rec/wi\tLOAD rec\tLOAD wi\n")
			for i, p := range r.Points {
				if i == MaxTextRows {
					fmt.Fprintf(tw, "  … %d more (--json lists all)\n", len(r.Points)-i)
					break
				}
				fmt.Fprintf(tw, "  %d\t%s\t%s\t%d/%d\t%d/%d\t%d/%d\t%d/%d\n", p.Seq, fmtTime(p.Time), p.Reason,
					p.Recorded.Moved, p.WhatIf.Moved, p.Recorded.Placed, p.WhatIf.Placed,
					p.Recorded.MaxLoad, p.Recorded.MinLoad, p.WhatIf.MaxLoad, p.WhatIf.MinLoad)
			}
		})
	}
	if r.ZoneLoss != nil {
		r.ZoneLoss.writeText(t)
	}
	for _, n := range r.Notes {
		t.f("note: %s\n", n)
	}
	return t.err
}

// violationTemplate is a violation's message with its partition's ID
// replaced by "<partition>", so that the same finding about many
// partitions of one record reads as one.
func violationTemplate(v Violation) string {
	if v.Partition == "" {
		return v.Message
	}
	return strings.ReplaceAll(v.Message, v.Partition, "<partition>")
}
