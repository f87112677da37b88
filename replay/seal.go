package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/parti-io/parti/events"
)

// An export is sealed: its first line names the group and its last line
// repeats the group and counts the records between them:
//
//	{"parti_export":1,"group":"orders"}
//	{"seq":1,...}
//	...
//	{"parti_export_end":1,"group":"orders","records":1234}
//
// A reader refuses a sealed file whose trailer is missing (cut at the end),
// whose header is missing (cut at the start), whose count differs from the
// records read (cut or joined in the middle), that holds a second header
// (two files spliced), or records after the trailer. In every file, sealed or
// not, a record on another group's subjects is refused (two groups spliced).
// A file without header and trailer (written before exports were sealed) is
// read as before: [FileSource.Sealed] reports false so that a command can
// warn that a cut at its end cannot be detected.

// ErrCut is wrapped (together with [ErrFormat]) by the errors about a
// sealed export whose header, trailer or record count does not match: a cut
// or spliced file.
var ErrCut = errors.New("replay: cut or spliced export")

// ErrForeignRecord is wrapped (together with [ErrFormat] and [ErrCut]) by
// the error about a record on another group's subjects than the file's
// group.
var ErrForeignRecord = errors.New("replay: record of another group")

const (
	sealFormat   = 1
	headerPrefix = `{"parti_export":`
	footerPrefix = `{"parti_export_end":`
)

// Begin writes the header naming group. Call it before the first Write;
// End then writes the trailer.
func (w *Writer) Begin(group string) error {
	if err := events.ValidID(group); err != nil {
		return fmt.Errorf("replay: export: group: %w", err)
	}
	if w.began || w.n > 0 {
		return errors.New("replay: export: Begin after the first record")
	}
	w.began, w.group = true, group
	w.buf = append(w.buf[:0], headerPrefix...)
	w.buf = strconv.AppendInt(w.buf, sealFormat, 10)
	w.buf = append(w.buf, `,"group":`...)
	w.buf = appendJSONString(w.buf, group)
	w.buf = append(w.buf, "}\n"...)
	_, err := w.w.Write(w.buf)
	return err
}

// End writes the trailer (the group and the number of records written) and
// flushes. Without Begin it only flushes.
func (w *Writer) End() error {
	if w.began {
		w.buf = append(w.buf[:0], footerPrefix...)
		w.buf = strconv.AppendInt(w.buf, sealFormat, 10)
		w.buf = append(w.buf, `,"group":`...)
		w.buf = appendJSONString(w.buf, w.group)
		w.buf = append(w.buf, `,"records":`...)
		w.buf = strconv.AppendInt(w.buf, int64(w.n), 10)
		w.buf = append(w.buf, "}\n"...)
		if _, err := w.w.Write(w.buf); err != nil {
			return err
		}
		w.began = false
	}
	return w.Flush()
}

// sealLine is a header or trailer line.
type sealLine struct {
	line    int  // line number in the file
	at      int  // record lines before it in its chunk
	end     bool // trailer
	group   string
	records int
}

// sealJSON is the JSON form of a header or trailer.
type sealJSON struct {
	Export  *int    `json:"parti_export"`
	End     *int    `json:"parti_export_end"`
	Group   *string `json:"group"`
	Records *int    `json:"records"`
}

// parseSeal reports whether line is a header or trailer (ok) and parses it;
// err is set for a header or trailer that is malformed.
func parseSeal(line []byte) (s sealLine, ok bool, err error) {
	t := bytes.TrimSpace(line)
	if !bytes.HasPrefix(t, []byte(headerPrefix)) && !bytes.HasPrefix(t, []byte(footerPrefix)) {
		if bytes.HasPrefix(t, []byte(`{"seq":`)) || !bytes.Contains(t, []byte(`"parti_export`)) {
			return s, false, nil
		}
	}
	var j sealJSON
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.DisallowUnknownFields()
	if dec.Decode(&j) != nil || (j.Export == nil && j.End == nil) {
		return s, false, nil // not a seal line: the record parser reports it
	}
	switch {
	case j.Export != nil && j.End != nil:
		return s, true, errors.New(`both "parti_export" and "parti_export_end"`)
	case j.Group == nil:
		return s, true, errors.New(`export header or trailer without "group"`)
	case j.End != nil && j.Records == nil:
		return s, true, errors.New(`export trailer without "records"`)
	case j.Export != nil && j.Records != nil:
		return s, true, errors.New(`"records" belongs in the trailer, not the header`)
	}
	v := j.Export
	if j.End != nil {
		v = j.End
	}
	if *v != sealFormat {
		return s, true, fmt.Errorf("export format %d: this build reads format %d", *v, sealFormat)
	}
	if err := events.ValidID(*j.Group); err != nil {
		return s, true, fmt.Errorf("export group: %w", err)
	}
	s.end, s.group = j.End != nil, *j.Group
	if j.Records != nil {
		if *j.Records < 0 {
			return s, true, errors.New(`export trailer: negative "records"`)
		}
		s.records = *j.Records
	}
	return s, true, nil
}

// sealCheck follows a file's structure in order: header, records, trailer.
type sealCheck struct {
	name    string
	group   string // expected group; "" until known
	sealed  bool   // header read
	ended   bool   // trailer read
	endLine int
	records int // record lines read
}

// chunk checks the header and trailer lines of c, in order, and that its
// records are all of the file's group.
func (s *sealCheck) chunk(c *chunk) error {
	if s.group == "" {
		for _, m := range c.seals {
			if !m.end {
				s.group = m.group
				break
			}
		}
	}
	if c.nrec > 0 {
		if s.group == "" {
			s.group = c.group
		}
		if c.group != s.group {
			return s.foreign(c.groupLine, c.group)
		}
		if c.foreignLine != 0 {
			return s.foreign(c.foreignLine, subjectGroup(c.foreign))
		}
	}
	prev := 0
	for _, m := range c.seals {
		if err := s.recordLines(m.at - prev); err != nil {
			return err
		}
		prev = m.at
		if err := s.seal(m); err != nil {
			return err
		}
	}
	return s.recordLines(c.nrec - prev)
}

func (s *sealCheck) foreign(line int, group string) error {
	return fmt.Errorf("%w: %w: %w: %s:%d: a record of group %q in an export of group %s: files spliced", ErrFormat, ErrCut, ErrForeignRecord, s.name, line, group, s.group)
}

func (s *sealCheck) recordLines(n int) error {
	if n == 0 {
		return nil
	}
	if s.ended {
		return fmt.Errorf("%w: %w: %s: records after the export's trailer (line %d): two files spliced", ErrFormat, ErrCut, s.name, s.endLine)
	}
	s.records += n
	return nil
}

func (s *sealCheck) seal(m sealLine) error {
	switch {
	case !m.end && (s.sealed || s.records > 0):
		return fmt.Errorf("%w: %w: %s:%d: an export header (group %s) after %d records: files spliced", ErrFormat, ErrCut, s.name, m.line, m.group, s.records)
	case !m.end:
		if s.group != "" && m.group != s.group {
			return fmt.Errorf("%w: %w: %s:%d: the export is of group %s, not %s", ErrFormat, ErrForeignRecord, s.name, m.line, m.group, s.group)
		}
		s.sealed, s.group = true, m.group
	case !s.sealed:
		return fmt.Errorf("%w: %w: %s:%d: an export trailer without a header: the file is cut at its start", ErrFormat, ErrCut, s.name, m.line)
	case s.ended:
		return fmt.Errorf("%w: %w: %s:%d: a second export trailer: files spliced", ErrFormat, ErrCut, s.name, m.line)
	case m.group != s.group:
		return fmt.Errorf("%w: %w: %s:%d: the trailer names group %s, the header %s: files spliced", ErrFormat, ErrCut, s.name, m.line, m.group, s.group)
	case m.records != s.records:
		return fmt.Errorf("%w: %w: %s:%d: the trailer counts %d records, the file holds %d: the file is cut or spliced", ErrFormat, ErrCut, s.name, m.line, m.records, s.records)
	default:
		s.ended, s.endLine = true, m.line
	}
	return nil
}

// end checks, once the whole file was read, that a sealed file ended with
// its trailer.
func (s *sealCheck) end() error {
	if s.sealed && !s.ended {
		return fmt.Errorf("%w: %w: %s: the export's trailer is missing after %d records: the file is cut", ErrFormat, ErrCut, s.name, s.records)
	}
	return nil
}

// subjectGroup returns the group token of a subject (its second token).
func subjectGroup(subject string) string {
	_, rest, _ := strings.Cut(subject, ".")
	g, _, _ := strings.Cut(rest, ".")
	return g
}
