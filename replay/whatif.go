package replay

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/strategy"
)

// WhatIfOptions say what to change in a what-if.
type WhatIfOptions struct {
	// Strategy replaces the declared strategy ("": as declared).
	Strategy string
	// Window, if set, replaces the recorded join windows: each window the
	// what-if's fold opens closes once this much server time has passed
	// (0: at once, a rebalance for every planned join), and the recorded
	// window closes are ignored.
	Window *time.Duration
	// FailZone, if set, loses a zone at the end of the history: every live
	// member labelled zone=FailZone (or the label FailZone itself, when it
	// holds a '=') is removed and the what-if rebalances (see
	// WhatIfZoneLoss).
	FailZone string
}

// Strategies returns the strategy names a what-if accepts.
func Strategies() []string { return strategy.Names() }

// WhatIfReport compares what happened with what would have happened.
type WhatIfReport struct {
	Group  string `json:"group"`
	Source string `json:"source"`
	// Strategy is the what-if's strategy; Declared the strategies the
	// history declared, in order.
	Strategy string   `json:"strategy"`
	Declared []string `json:"declared"`
	// Window is "as recorded" or the what-if's window.
	Window string `json:"window"`
	// Points lists every decision point: each accepted recorded decision,
	// and each what-if window close after which the what-if decided.
	Points   []WhatIfPoint `json:"points"`
	Recorded WhatIfTotals  `json:"recorded"`
	WhatIf   WhatIfTotals  `json:"whatif"`
	// ZoneLoss is the zone loss at the end (WhatIfOptions.FailZone).
	ZoneLoss *WhatIfZoneLoss `json:"zone_loss,omitempty"`
	// Notes lists where the what-if's fold departed from the record in a
	// way that limits the comparison.
	Notes []string `json:"notes,omitempty"`
}

// WhatIfSide is one side of a decision point: the partitions the decision
// moved from one member to another, those it placed (they had no owner),
// and the balance after it: the most and fewest partitions an eligible
// member owns or receives.
type WhatIfSide struct {
	Decided bool `json:"decided"`
	Moved   int  `json:"moved"`
	Placed  int  `json:"placed"`
	MaxLoad int  `json:"max_load"`
	MinLoad int  `json:"min_load"`
	Members int  `json:"members"`
}

// WhatIfPoint is a decision point.
type WhatIfPoint struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Reason is the recorded decision's reason, or "window" for a what-if
	// window close.
	Reason   string     `json:"reason"`
	Recorded WhatIfSide `json:"recorded"`
	WhatIf   WhatIfSide `json:"whatif"`
}

// WhatIfTotals sums one side.
type WhatIfTotals struct {
	Decisions int `json:"decisions"`
	Moved     int `json:"moved"`
	Placed    int `json:"placed"`
	// FinalMax and FinalMin are the balance at the end; WorstSpread the
	// largest max − min after any of the side's own decisions.
	FinalMax    int `json:"final_max_load"`
	FinalMin    int `json:"final_min_load"`
	WorstSpread int `json:"worst_spread"`
}

// whatIf is the what-if's fold: the recorded membership history applied to
// a second state, with its own decisions and (immediate) releases.
type whatIf struct {
	opts  WhatIfOptions
	s     *decider.State
	seq   uint64
	subj  string
	rep   *WhatIfReport
	open  time.Time // when the what-if's window opened (zero: none open)
	notes map[string]bool
}

func (w *whatIf) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !w.notes[msg] && len(w.rep.Notes) < 50 {
		w.notes[msg] = true
		w.rep.Notes = append(w.rep.Notes, msg)
	}
}

func (w *whatIf) apply(t time.Time, ev events.Event) decider.Outcome {
	w.seq++
	return decider.Apply(w.s, events.Record{Seq: w.seq, Time: t, Subject: w.subj, Event: ev})
}

// WhatIf refolds the recorded membership history of src — claims, leaves,
// closes, grace ends, removals, declarations, operator actions — under
// another strategy or window: at every point where a recorded decision was
// accepted (and where a what-if window closes), the what-if's leader decides
// with decider.Decide, and every source releases at once. It reports moves
// and balance side by side with what happened.
//
// Releases in the what-if are immediate, so moves never wait; everything
// else is the recorded history. A claim that waited for an ID held by a
// leaving member may be granted earlier in the what-if; Notes says when the
// two folds disagree on a membership event.
func WhatIf(ctx context.Context, src Source, opts WhatIfOptions) (*WhatIfReport, error) {
	if opts.Strategy != "" {
		if _, err := strategy.ByName(opts.Strategy); err != nil {
			return nil, fmt.Errorf("replay: what-if: %w", err)
		}
	}
	f := newFolder(src.Subjects())
	rep := &WhatIfReport{Group: src.Subjects().Group, Source: src.String(), Strategy: opts.Strategy, Declared: []string{}, Window: "as recorded", Points: []WhatIfPoint{}}
	if opts.Window != nil {
		rep.Window = opts.Window.String()
	}
	w := &whatIf{opts: opts, s: decider.New(), subj: src.Subjects().Log(), rep: rep, notes: map[string]bool{}}
	var last time.Time
	var (
		recMoved, recPlaced int // of the parts of a multi-part decision so far
	)
	err := src.Scan(ctx, ScanOptions{LogOnly: true, SkipHeaders: true}, func(r *events.Record) error {
		if f.count(r) != events.SubjectLog {
			return nil
		}
		last = r.Time
		if opts.Window != nil && w.s.Window && !w.open.IsZero() && r.Time.Sub(w.open) >= *opts.Window {
			w.closeWindow(r.Seq, r.Time, f.s)
		}
		out := f.apply(r)
		switch e := r.Event.(type) {
		case *events.AssignmentDecided:
			moved, placed := 0, 0
			for _, mv := range e.Moves {
				if mv.From == "" {
					placed += mv.Parts.Len()
				} else {
					moved += mv.Parts.Len()
				}
			}
			switch out.Kind {
			case decider.Partial:
				recMoved, recPlaced = recMoved+moved, recPlaced+placed
			case decider.Applied:
				rec := balance(f.s)
				rec.Decided, rec.Moved, rec.Placed = true, recMoved+moved, recPlaced+placed
				recMoved, recPlaced = 0, 0
				rep.Points = append(rep.Points, WhatIfPoint{Seq: r.Seq, Time: r.Time, Reason: e.Reason, Recorded: rec, WhatIf: w.decide(r.Time)})
			default:
				recMoved, recPlaced = 0, 0
			}
			return nil
		case *events.PartitionsReleased:
			return nil // the what-if releases at once, by itself
		case *events.WindowClosed:
			if opts.Window != nil {
				return nil
			}
		case *events.PartitionsDeclared:
			if out.Kind == decider.Applied && e.Strategy != "" {
				rep.Declared = append(rep.Declared, e.Strategy)
			}
		case nil:
			return nil
		}
		wasWindow := w.s.Window
		if g, ok := r.Event.(*events.Genesis); ok && g.Part == 0 && w.seq < g.UpTo {
			// The what-if starts from the carried state too: its own
			// sequence must follow the log the genesis carries.
			w.seq = g.UpTo
		}
		wout := w.apply(r.Time, r.Event)
		switch r.Event.(type) {
		case *events.PartitionsDeclared, *events.Genesis:
			if opts.Strategy != "" && wout.Kind == decider.Applied {
				w.s.Strategy = opts.Strategy
			}
		}
		if (out.Kind == decider.Applied) != (wout.Kind == decider.Applied) && out.Kind != decider.Partial {
			w.note("seq %d (%s): %s in the record, %s in the what-if", r.Seq, eventName(r), out.Kind, wout.Kind)
		}
		if _, ok := r.Event.(*events.OperatorAction); ok {
			w.releaseAll(r.Time) // an operator's move lands at once too
		}
		if w.s.Window && !wasWindow {
			w.open = r.Time
		}
		if !w.s.Window {
			w.open = time.Time{}
		}
		if opts.Window != nil && w.s.Window && !w.open.IsZero() && r.Time.Sub(w.open) >= *opts.Window {
			w.closeWindow(r.Seq, r.Time, f.s)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rep.Strategy == "" {
		rep.Strategy = "as declared"
	}
	rep.Recorded = totals(rep.Points, func(p WhatIfPoint) WhatIfSide { return p.Recorded }, balance(f.s))
	rep.WhatIf = totals(rep.Points, func(p WhatIfPoint) WhatIfSide { return p.WhatIf }, balance(w.s))
	if opts.FailZone != "" {
		rep.ZoneLoss = w.failZone(last, opts.FailZone) // after the totals: they describe the history
	}
	return rep, nil
}

// closeWindow closes the what-if's window and decides.
func (w *whatIf) closeWindow(seq uint64, t time.Time, recorded *decider.State) {
	l, ok := w.s.Leader()
	if !ok {
		return
	}
	w.apply(t, &events.WindowClosed{By: l.ID})
	w.open = time.Time{}
	if side := w.decide(t); side.Decided {
		w.rep.Points = append(w.rep.Points, WhatIfPoint{Seq: seq, Time: t, Reason: "window", Recorded: balance(recorded), WhatIf: side})
	}
}

// decide lets the what-if's leader decide, and the sources release at once.
func (w *whatIf) decide(t time.Time) WhatIfSide {
	l, ok := w.s.Leader()
	if !ok {
		return balance(w.s)
	}
	d, err := decider.Decide(w.s, l.ID, l.Incarnation)
	if err != nil {
		w.note("the what-if's decision failed: %v", err)
		return balance(w.s)
	}
	if d == nil {
		return balance(w.s)
	}
	side := WhatIfSide{Decided: true}
	for _, mv := range d.Moves {
		if mv.From == "" {
			side.Placed += mv.Parts.Len()
		} else {
			side.Moved += mv.Parts.Len()
		}
	}
	if out := w.apply(t, d); out.Kind != decider.Applied {
		w.note("the what-if's own decision was %s: %s", out.Kind, out.Reason)
		return balance(w.s)
	}
	w.releaseAll(t)
	b := balance(w.s)
	b.Decided, b.Moved, b.Placed = side.Decided, side.Moved, side.Placed
	return b
}

// releaseAll has every member release at once what it is asked to move:
// one release per source, in join order. One pass over the partitions.
func (w *whatIf) releaseAll(t time.Time) {
	type key struct {
		id  string
		inc uint64
	}
	var rels map[key]*events.PartitionsReleased
	for i := range w.s.Owners {
		o := &w.s.Owners[i]
		if o.Target == "" {
			continue
		}
		if rels == nil {
			rels = map[key]*events.PartitionsReleased{}
		}
		k := key{o.Owner, o.Inc}
		rel := rels[k]
		if rel == nil {
			rel = &events.PartitionsReleased{Member: o.Owner, Incarnation: o.Inc}
			rels[k] = rel
		}
		rel.Released = append(rel.Released, events.Released{Partition: uint32(i), Token: o.Token})
	}
	if rels == nil {
		return
	}
	for _, id := range slices.Clone(w.s.Order) {
		if m := w.s.Members[id]; m != nil {
			if rel := rels[key{m.ID, m.Incarnation}]; rel != nil {
				w.apply(t, rel)
			}
		}
	}
}

// balance returns the load of the eligible members of s, counting each
// partition for its owner, or for its target while a move is in flight.
func balance(s *decider.State) WhatIfSide {
	load := make(map[string]int, len(s.Members))
	for _, id := range s.Order {
		if s.Members[id].Eligible() {
			load[id] = 0
		}
	}
	for i := range s.Owners {
		o := &s.Owners[i]
		id := o.Owner
		if o.Target != "" {
			id = o.Target
		}
		if _, ok := load[id]; ok {
			load[id]++
		}
	}
	side := WhatIfSide{Members: len(load)}
	first := true
	for _, n := range load {
		if first || n > side.MaxLoad {
			side.MaxLoad = n
		}
		if first || n < side.MinLoad {
			side.MinLoad = n
		}
		first = false
	}
	return side
}

func totals(points []WhatIfPoint, side func(WhatIfPoint) WhatIfSide, final WhatIfSide) WhatIfTotals {
	var t WhatIfTotals
	for _, p := range points {
		s := side(p)
		if s.Decided {
			t.Decisions++
		}
		t.Moved += s.Moved
		t.Placed += s.Placed
		if s.Decided {
			// After the side's own decisions only: a point where only the
			// other side decided (a what-if window's close) catches this
			// side mid-change, and would make the recorded figure depend
			// on the what-if's options.
			t.WorstSpread = max(t.WorstSpread, s.MaxLoad-s.MinLoad)
		}
	}
	t.FinalMax, t.FinalMin = final.MaxLoad, final.MinLoad
	return t
}
