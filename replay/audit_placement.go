package replay

import (
	"strconv"
	"strings"
	"time"

	"github.com/parti-io/parti/decider"
)

// UnplaceableSpan is an unowned span, longer than the audit's bound, of a
// partition whose constraint no eligible member met when the span began.
type UnplaceableSpan struct {
	Partition string   `json:"partition"`
	Require   []string `json:"require"`
	From      Position `json:"from"`
	To        Position `json:"to"`
	Duration  string   `json:"duration"`
	// Open is set for a span still open at the end of the history.
	Open bool `json:"open,omitempty"`
}

// markUnplaceable records whether partition i of s, unowned from now, is
// unplaceable: its class requires labels no eligible member carries.
func (a *auditor) markUnplaceable(s *decider.State, i int) {
	if s.ClassOf == nil {
		return
	}
	req := s.Class(i).Require
	if len(req) == 0 || anyEligibleHas(s, req) {
		if a.unplaced != nil {
			delete(a.unplaced, s.Partitions[i])
		}
		return
	}
	if a.unplaced == nil {
		a.unplaced = map[string]bool{}
	}
	a.unplaced[s.Partitions[i]] = true
}

// unplaceableSpan reports (and lists) partition p's over-long unowned span
// as an unplaceable finding when the span began unplaceable.
func (a *auditor) unplaceableSpan(p uint32, seq uint64, t time.Time, d time.Duration, open bool) bool {
	id := a.ids[p]
	if !a.unplaced[id] {
		return false
	}
	delete(a.unplaced, id)
	var req []string
	if i, ok := a.f.s.PartitionIndex(id); ok {
		req = a.f.s.Class(int(i)).Require
	}
	a.rep.Unplaceable = append(a.rep.Unplaceable, UnplaceableSpan{
		Partition: id, Require: req,
		From:     Position{Seq: a.sinceSeq[p], Time: time.Unix(0, a.since[p]).UTC()},
		To:       Position{Seq: seq, Time: t},
		Duration: d.String(), Open: open,
	})
	return true
}

// writeUnplaceable prints the unplaceable findings of an audit.
func writeUnplaceable(t *textWriter, spans []UnplaceableSpan) {
	for i, u := range spans {
		if i == MaxTextRows {
			t.f("  … %d more unplaceable spans (--json lists them)\n", len(spans)-i)
			break
		}
		until := "seq " + strconv.FormatUint(u.To.Seq, 10)
		if u.Open {
			until = "the end of the history"
		}
		t.f("unplaceable: %s was unowned for %s from seq %d until %s: no eligible member had %s (its constraint; not a violation)\n",
			u.Partition, u.Duration, u.From.Seq, until, strings.Join(u.Require, ","))
	}
}
