package replay

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"time"
)

//go:embed report.html
var reportHTML string

var reportTmpl = template.Must(template.New("report").Parse(reportHTML))

// PageData is a Timeline encoded for the report page: the changes' times
// and sequences as differences from the previous change (mostly 0, so a
// 500-member, 100,000-partition history stays small).
type PageData struct {
	Group      string   `json:"group"`
	Source     string   `json:"source"`
	Start      int64    `json:"start"` // Unix milliseconds
	End        int64    `json:"end"`   // milliseconds since Start
	LastSeq    uint64   `json:"last_seq"`
	Partitions []string `json:"partitions"`
	Lanes      []Lane   `json:"lanes"`
	// DT, P, L, DS: change i happened DT[i] ms after change i-1 (the first
	// after Start), at sequence DS[i] after change i-1's; partition P[i]
	// went to lane L[i] (-1 unowned, -2 undeclared).
	DT       []int64  `json:"dt"`
	P        []int32  `json:"p"`
	L        []int32  `json:"l"`
	DS       []uint64 `json:"ds"`
	Markers  []Marker `json:"markers"`
	Records  uint64   `json:"records"`
	Garbage  uint64   `json:"garbage"`
	Rejected uint64   `json:"rejected"`
}

// Page encodes tl for the report page.
func (tl *Timeline) Page() *PageData {
	c := &tl.Changes
	p := &PageData{
		Group: tl.Group, Source: tl.Source, Start: tl.Start.UnixMilli(),
		End: tl.End.Sub(tl.Start).Milliseconds(), LastSeq: tl.LastSeq,
		Partitions: tl.Partitions, Lanes: tl.Lanes, P: c.P, L: c.L, Markers: tl.Markers,
		DT: make([]int64, len(c.T)), DS: make([]uint64, len(c.S)),
		Records: tl.Reads.Log, Garbage: tl.Reads.Garbage, Rejected: tl.Counters.Rejected,
	}
	var t0 int64
	var s0 uint64
	for i := range c.T {
		p.DT[i], p.DS[i] = c.T[i]-t0, c.S[i]-s0
		t0, s0 = c.T[i], c.S[i]
	}
	if p.Start < 0 || tl.Start.IsZero() {
		p.Start = 0
	}
	return p
}

// ReportOptions shape the report page.
type ReportOptions struct {
	// Live makes the page fetch DataURL every Refresh and redraw: the page
	// parti-replay serve shows. Otherwise the page holds its data and needs
	// no network.
	Live    bool
	DataURL string
	Refresh time.Duration
	// Generated is the time printed as the page's creation time.
	Generated time.Time
}

// WriteReport writes the ownership timeline of tl as one self-contained
// HTML page: members' incarnations as lanes over time with the number of
// partitions each held, every join, leave, close, crash verdict, decision
// and operator action as a marker, unowned intervals, and a partition's
// history on a click.
func WriteReport(w io.Writer, tl *Timeline, opts ReportOptions) error {
	var data []byte
	if !opts.Live {
		var err error
		if data, err = json.Marshal(tl.Page()); err != nil {
			return fmt.Errorf("replay: report: %w", err)
		}
	}
	refresh := opts.Refresh
	if refresh <= 0 {
		refresh = 2 * time.Second
	}
	err := reportTmpl.Execute(w, struct {
		Group     string
		Data      template.JS
		Live      bool
		DataURL   string
		Refresh   int64
		Generated string
	}{
		Group: tl.Group, Data: template.JS(data), Live: opts.Live, DataURL: opts.DataURL,
		Refresh: refresh.Milliseconds(), Generated: opts.Generated.UTC().Format(TimeFormat),
	})
	if err != nil {
		return fmt.Errorf("replay: report: %w", err)
	}
	return nil
}
