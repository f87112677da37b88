package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/replay"
)

// progressSource shows a progress line on stderr during long reads, when
// stderr is a terminal.
type progressSource struct {
	replay.Source
	w io.Writer
}

func wrapProgress(e *env, src replay.Source) replay.Source {
	if !e.term || e.name == "tail" {
		return src
	}
	return &progressSource{Source: src, w: e.stderr}
}

// Scan implements replay.Source.
func (p *progressSource) Scan(ctx context.Context, opts replay.ScanOptions, fn func(*events.Record) error) error {
	start := time.Now()
	last := start
	n, shown := 0, false
	err := p.Source.Scan(ctx, opts, func(r *events.Record) error {
		n++
		if n&0x3fff == 0 {
			if now := time.Now(); now.Sub(start) > time.Second && now.Sub(last) > 250*time.Millisecond {
				fmt.Fprintf(p.w, "\r\033[Kreading %s: %d records, seq %d", p.Source, n, r.Seq)
				shown, last = true, now
			}
		}
		return fn(r)
	})
	if shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
	return err
}
