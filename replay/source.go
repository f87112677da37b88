package replay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/parti-io/parti/events"
)

// ErrStop ends a Scan early when fn returns it; Scan then returns nil.
var ErrStop = errors.New("replay: stop")

// Source is a group's history: a live stream (StreamSource), an export file
// (FileSource) or records in memory (MemorySource).
type Source interface {
	// Subjects returns the group's subject map.
	Subjects() events.Subjects
	// Scan calls fn with every record in stream order, one at a time, on
	// the calling goroutine, until the end of the history, until fn
	// returns an error (ErrStop ends the scan with a nil error) or reading
	// fails. The end of a stream is its last sequence when Scan started,
	// unless opts.Follow. The record, its Body and its Header are valid
	// only during the call: copy what you keep (its Event may be kept).
	Scan(ctx context.Context, opts ScanOptions, fn func(*events.Record) error) error
	// String says where the records come from, for messages.
	String() string
}

// ScanOptions say what a Scan reads.
type ScanOptions struct {
	// LogOnly reads only the group's log subject (what the fold needs);
	// otherwise heartbeats, verdicts and snapshot chunks are read too.
	LogOnly bool
	// From is the first sequence to read (0 and 1 both mean the start).
	From uint64
	// Follow keeps reading a stream past its end, until ctx ends (Scan
	// then returns ctx.Err()). A file or memory source ignores it.
	Follow bool
	// SkipHeaders leaves Record.Header nil: the fold and the audit never
	// read headers, and parsing them costs allocations.
	SkipHeaders bool
}

// inferSubjects returns the subject map of the group a subject belongs to
// (<prefix>.<group>.log|snap|hb...).
func inferSubjects(subject string) (events.Subjects, bool) {
	parts := strings.SplitN(subject, ".", 4)
	if len(parts) < 3 || parts[0] == "" || events.ValidID(parts[1]) != nil {
		return events.Subjects{}, false
	}
	switch parts[2] {
	case "log", "snap", "hb":
		return events.Subjects{Group: parts[1], Prefix: parts[0]}, true
	}
	return events.Subjects{}, false
}

// MemorySource is a history held in memory, for tests and for records
// returned by Import.
type MemorySource struct {
	subjects events.Subjects
	records  []events.Record
}

// NewMemorySource returns a source over records. With group "" the group is
// taken from the first record's subject.
func NewMemorySource(group string, records []events.Record) (*MemorySource, error) {
	subj, err := groupSubjects(group, func() (string, bool) {
		if len(records) == 0 {
			return "", false
		}
		return records[0].Subject, true
	})
	if err != nil {
		return nil, err
	}
	return &MemorySource{subjects: subj, records: records}, nil
}

func groupSubjects(group string, first func() (string, bool)) (events.Subjects, error) {
	if group != "" {
		return events.NewSubjects(group)
	}
	subject, ok := first()
	if !ok {
		return events.Subjects{}, fmt.Errorf("replay: the history is empty and no group was given")
	}
	subj, ok := inferSubjects(subject)
	if !ok {
		return events.Subjects{}, fmt.Errorf("replay: cannot tell the group from subject %q: give the group", subject)
	}
	return subj, nil
}

// Subjects implements Source.
func (m *MemorySource) Subjects() events.Subjects { return m.subjects }

// String implements Source.
func (m *MemorySource) String() string { return fmt.Sprintf("%d records in memory", len(m.records)) }

// Scan implements Source.
func (m *MemorySource) Scan(ctx context.Context, opts ScanOptions, fn func(*events.Record) error) error {
	logSubj := m.subjects.Log()
	for i := range m.records {
		r := &m.records[i]
		if r.Seq < opts.From || (opts.LogOnly && r.Subject != logSubj) {
			continue
		}
		if i%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		c := *r
		if opts.SkipHeaders {
			c.Header = nil
		}
		if err := fn(&c); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// FileSource is an export file (see Export). Every Scan reads the file
// again; nothing is ever written.
type FileSource struct {
	path     string
	subjects events.Subjects
	sealed   bool
}

// Sealed reports whether the file starts with an export header. A sealed
// file is checked whole at every Scan: a cut or spliced file is an error. A
// file without the header (written before exports were sealed) is read as
// it is: a cut at its end goes unnoticed, so a command should warn.
func (f *FileSource) Sealed() bool { return f.sealed }

// OpenFile checks that path is readable and starts with an export header or
// record, and returns a source over it. With group "" the group is taken
// from the header, or, in a file without one, from the first record's
// subject. The rest of the file is checked at each Scan (see [ErrCut]).
func OpenFile(path, group string) (*FileSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var first rawRecord
	lineNo := 0
	for {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				if group == "" {
					return nil, fmt.Errorf("replay: %s holds no records", path)
				}
				subj, err := events.NewSubjects(group)
				if err != nil {
					return nil, fmt.Errorf("replay: %w", err)
				}
				return &FileSource{path: path, subjects: subj}, nil
			}
			return nil, fmt.Errorf("replay: %s: %w", path, err)
		}
		lineNo++
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if m, ok, err := parseSeal(line); ok {
			switch {
			case err != nil:
				return nil, fmt.Errorf("%w: %s:%d: %v", ErrFormat, path, lineNo, err)
			case m.end:
				return nil, fmt.Errorf("%w: %w: %s:%d: the file starts with an export trailer: it is cut at its start", ErrFormat, ErrCut, path, lineNo)
			case group != "" && m.group != group:
				return nil, fmt.Errorf("replay: %s holds group %s, not %s", path, m.group, group)
			}
			subj, err := events.NewSubjects(m.group)
			if err != nil {
				return nil, fmt.Errorf("replay: %s: %w", path, err)
			}
			return &FileSource{path: path, subjects: subj, sealed: true}, nil
		}
		first, err = newLineParser(true).parse(line)
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %v", ErrFormat, path, lineNo, err)
		}
		break
	}
	subj, err := groupSubjects(group, func() (string, bool) { return first.subject, true })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if in, ok := inferSubjects(first.subject); ok && group != "" && in.Group != group {
		return nil, fmt.Errorf("replay: %s holds group %s, not %s", path, in.Group, group)
	}
	return &FileSource{path: path, subjects: subj}, nil
}

// Subjects implements Source.
func (f *FileSource) Subjects() events.Subjects { return f.subjects }

// String implements Source.
func (f *FileSource) String() string { return "file " + f.path }

// Scan implements Source. Lines are parsed and bodies decoded on
// GOMAXPROCS goroutines; fn is called in file order on the calling
// goroutine.
func (f *FileSource) Scan(ctx context.Context, opts ScanOptions, fn func(*events.Record) error) error {
	file, err := os.Open(f.path)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer file.Close()
	return scanLines(ctx, file, f.path, f.subjects.Group, f.subjects.Log(), opts, fn)
}

// scanReader reads an export stream sequentially (Import).
func scanReader(r io.Reader, fn func(*events.Record) error) error {
	return scanLines(context.Background(), r, "input", "", "", ScanOptions{}, fn)
}

// chunk is a batch of input — a run of whole lines of a file, or messages
// read from a stream — and the records decoded from it.
type chunk struct {
	buf  []byte      // whole lines (files)
	raws []rawRecord // messages (streams)
	line int         // number of the chunk's first line
	recs []events.Record
	err  error
	done chan struct{}

	// Files only: the export's header and trailer lines, the number of
	// record lines (filtered or not), the group of the first record line
	// and the first record line of another group than that.
	seals       []sealLine
	nrec        int
	group       string
	groupLine   int
	foreign     string
	foreignLine int
}

const chunkBytes = 512 << 10

var chunks = sync.Pool{New: func() any { return &chunk{buf: make([]byte, 0, chunkBytes+64<<10)} }}

func getChunk() *chunk {
	c := chunks.Get().(*chunk)
	c.buf, c.raws, c.recs, c.err, c.done = c.buf[:0], c.raws[:0], c.recs[:0], nil, make(chan struct{})
	c.seals, c.nrec, c.group, c.groupLine, c.foreign, c.foreignLine = c.seals[:0], 0, "", 0, "", 0
	return c
}

func putChunk(c *chunk) {
	clear(c.recs)
	clear(c.raws)
	chunks.Put(c)
}

// runOrdered runs produce on its own goroutine and process on GOMAXPROCS
// worker goroutines, and calls fn with the records of each chunk in the
// order produce emitted the chunks, on the calling goroutine. produce calls
// emit for each chunk (false: stop, the scan is over) and returns its error.
// Decoding is the expensive part of a replay (encoding/json, a few µs a
// record): spreading it over every core is what makes a large history fast.
//
// check, when not nil, follows a file's header, records and trailer: a cut
// or spliced file is an error (a stream passes nil).
func runOrdered(ctx context.Context, produce func(ctx context.Context, emit func(*chunk) bool) error,
	process func(*lineParser, *chunk), skipHeaders bool, check *sealCheck, fn func(*events.Record) error) error {
	ctx, cancel := context.WithCancel(ctx)
	workers := max(1, runtime.GOMAXPROCS(0))
	work := make(chan *chunk, workers)
	order := make(chan *chunk, 2*workers+2)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	emit := func(c *chunk) bool {
		select {
		case order <- c:
		case <-ctx.Done():
			return false
		}
		select {
		case work <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(order)
		defer close(work)
		if err := produce(ctx, emit); err != nil {
			c := getChunk()
			c.err = err
			close(c.done)
			select {
			case order <- c:
			case <-ctx.Done():
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newLineParser(skipHeaders)
			for c := range work {
				if c.err == nil {
					process(p, c)
				}
				close(c.done)
			}
		}()
	}
	for c := range order {
		select {
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if c.err != nil {
			return c.err
		}
		if check != nil {
			if err := check.chunk(c); err != nil {
				return err
			}
		}
		for i := range c.recs {
			if err := fn(&c.recs[i]); err != nil {
				if errors.Is(err, ErrStop) {
					return nil
				}
				return err
			}
		}
		putChunk(c)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if check != nil {
		return check.end()
	}
	return nil
}

// scanLines parses r's lines on worker goroutines and calls fn in order.
// group, when not "", is the group every record must belong to.
func scanLines(ctx context.Context, r io.Reader, name, group, logSubject string, opts ScanOptions, fn func(*events.Record) error) error {
	produce := func(ctx context.Context, emit func(*chunk) bool) error {
		line := 1
		var carry []byte
		for {
			c := getChunk()
			c.buf = append(c.buf, carry...)
			eof, nl := false, bytes.IndexByte(c.buf, '\n') >= 0
			for !eof && !(nl && len(c.buf) >= chunkBytes) {
				if cap(c.buf)-len(c.buf) < 32<<10 {
					c.buf = append(c.buf, make([]byte, cap(c.buf))...)[:len(c.buf)]
				}
				n, err := r.Read(c.buf[len(c.buf):cap(c.buf)])
				if n > 0 {
					nl = nl || bytes.IndexByte(c.buf[len(c.buf):len(c.buf)+n], '\n') >= 0
					c.buf = c.buf[:len(c.buf)+n]
				}
				if errors.Is(err, io.EOF) {
					eof = true
				} else if err != nil {
					return fmt.Errorf("replay: read %s: %w", name, err)
				}
			}
			if !eof {
				k := bytes.LastIndexByte(c.buf, '\n')
				carry = append(carry[:0], c.buf[k+1:]...)
				c.buf = c.buf[:k+1]
			}
			c.line = line
			line += bytes.Count(c.buf, []byte{'\n'})
			if !emit(c) || eof {
				return nil
			}
		}
	}
	process := func(p *lineParser, c *chunk) { parseChunk(p, c, name, logSubject, opts) }
	return runOrdered(ctx, produce, process, opts.SkipHeaders, &sealCheck{name: name, group: group}, fn)
}

// parseChunk parses and decodes every line of c.
func parseChunk(p *lineParser, c *chunk, name, logSubject string, opts ScanOptions) {
	buf := c.buf
	lineNo := c.line
	for len(buf) > 0 {
		var line []byte
		if k := bytes.IndexByte(buf, '\n'); k >= 0 {
			line, buf = buf[:k], buf[k+1:]
		} else {
			line, buf = buf, nil
		}
		n := lineNo
		lineNo++
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if m, ok, err := parseSeal(line); ok {
			if err != nil {
				c.err = fmt.Errorf("%w: %s:%d: %v", ErrFormat, name, n, err)
				return
			}
			m.line, m.at = n, c.nrec
			c.seals = append(c.seals, m)
			continue
		}
		raw, err := p.parse(line)
		if err != nil {
			c.err = fmt.Errorf("%w: %s:%d: %v", ErrFormat, name, n, err)
			return
		}
		c.nrec++
		if g := subjectGroup(raw.subject); c.groupLine == 0 {
			c.group, c.groupLine = g, n
		} else if g != c.group && c.foreignLine == 0 {
			c.foreign, c.foreignLine = raw.subject, n
		}
		if raw.seq < opts.From || (opts.LogOnly && raw.subject != logSubject) {
			continue
		}
		rec := events.NewRecord(raw.seq, raw.time, raw.subject, raw.header, raw.body)
		if rec.Err != nil && raw.rawBody && !checkBody(raw.body) {
			// Not one JSON value where the canonical layout puts the
			// body: the line is not canonical; parse it properly.
			raw, err = p.parseAny(line)
			if err != nil {
				c.err = fmt.Errorf("%w: %s:%d: %v", ErrFormat, name, n, err)
				return
			}
			rec = events.NewRecord(raw.seq, raw.time, raw.subject, raw.header, raw.body)
		}
		c.recs = append(c.recs, rec)
	}
}

// decodeChunk decodes the messages of c (a stream's chunk).
func decodeChunk(_ *lineParser, c *chunk) {
	for i := range c.raws {
		r := &c.raws[i]
		c.recs = append(c.recs, events.NewRecord(r.seq, r.time, r.subject, r.header, r.body))
	}
}
