package replay

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/parti-io/parti/events"
)

// The export format: one JSON object per line, one line per stream message,
// in stream order:
//
//	{"seq":12,"time":"2026-01-02T03:04:05.123456789Z","subject":"parti.orders.log","headers":{"K":["v"]},"body":{"v":1,"t":2,"e":{...}}}
//
//   - seq is the stream sequence, time the server's timestamp (RFC 3339 with
//     nanoseconds, UTC), subject the message's subject;
//   - headers is present only when the message has headers;
//   - body is the raw body, embedded as is when it is a single valid JSON
//     value on one line (the case of every well-formed event); anything else
//     (garbage, an empty body, a body with a line break or surrounding
//     whitespace) is written as "body_b64", standard base64.
//
// That is everything the fold and the audit read, so a file replays exactly
// like the stream it came from. Export writes the canonical form: export →
// import → export is byte-identical. Import also accepts the same objects
// with other key orders and spacing.

// ErrFormat is wrapped by every error about a malformed export file; the
// error names the line.
var ErrFormat = errors.New("replay: malformed export")

// Writer writes records in the export format. It buffers: call Flush at the
// end. A Writer is not safe for concurrent use.
type Writer struct {
	w     *bufio.Writer
	buf   []byte
	n     int
	began bool   // Begin wrote the header
	group string // the header's group
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 256<<10)}
}

// Write writes one record. It fails for a subject or header that is not
// valid UTF-8 (JSON cannot carry it exactly).
func (w *Writer) Write(r *events.Record) error {
	var err error
	w.buf, err = AppendRecord(w.buf[:0], r)
	if err != nil {
		return err
	}
	w.n++
	_, err = w.w.Write(w.buf)
	return err
}

// Count returns the number of records written.
func (w *Writer) Count() int { return w.n }

// Flush writes any buffered data to the underlying writer.
func (w *Writer) Flush() error { return w.w.Flush() }

// Export writes records in the export format, sealed with the header and
// trailer of the group of the first record's subject. Records whose group
// cannot be told from their first subject (or none) are written unsealed.
func Export(w io.Writer, records []events.Record) error {
	ew := NewWriter(w)
	if len(records) > 0 {
		if subj, ok := inferSubjects(records[0].Subject); ok {
			if err := ew.Begin(subj.Group); err != nil {
				return err
			}
		}
	}
	for i := range records {
		if err := ew.Write(&records[i]); err != nil {
			return err
		}
	}
	return ew.End()
}

// Import reads an export file whole and returns its records, each decoded
// with events.NewRecord exactly as the fold receives a stream message.
// Import never publishes anything anywhere. A cut or spliced file is an
// error (see [ErrCut], [ErrForeignRecord]).
func Import(r io.Reader) ([]events.Record, error) {
	var out []events.Record
	err := scanReader(r, func(rec *events.Record) error {
		c := *rec
		c.Body = bytes.Clone(rec.Body)
		if c.Body == nil {
			c.Body = []byte{}
		}
		if c.Event != nil {
			// Re-decode from the copy so the event cannot alias a
			// buffer that the scanner reuses.
			c = events.NewRecord(c.Seq, c.Time, c.Subject, c.Header, c.Body)
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// AppendRecord appends r's line (with its newline) in the canonical export
// form to dst.
func AppendRecord(dst []byte, r *events.Record) ([]byte, error) {
	if !utf8.ValidString(r.Subject) {
		return dst, fmt.Errorf("replay: export: record %d: subject is not valid UTF-8", r.Seq)
	}
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = r.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","subject":`...)
	dst = appendJSONString(dst, r.Subject)
	if len(r.Header) > 0 {
		for k, vs := range r.Header {
			if !utf8.ValidString(k) {
				return dst, fmt.Errorf("replay: export: record %d: header name is not valid UTF-8", r.Seq)
			}
			for _, v := range vs {
				if !utf8.ValidString(v) {
					return dst, fmt.Errorf("replay: export: record %d: header %s is not valid UTF-8", r.Seq, k)
				}
			}
		}
		h, err := json.Marshal(r.Header) // sorted keys: canonical
		if err != nil {
			return dst, fmt.Errorf("replay: export: record %d: headers: %w", r.Seq, err)
		}
		dst = append(dst, `,"headers":`...)
		dst = append(dst, h...)
	}
	if embeddable(r.Body) {
		dst = append(dst, `,"body":`...)
		dst = append(dst, r.Body...)
	} else {
		dst = append(dst, `,"body_b64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, r.Body)
		dst = append(dst, '"')
	}
	return append(dst, "}\n"...), nil
}

// embeddable reports whether body can be written as a raw JSON value and read
// back byte for byte: one valid JSON value, valid UTF-8, no line break, no
// whitespace around it.
func embeddable(body []byte) bool {
	if len(body) == 0 || isSpace(body[0]) || isSpace(body[len(body)-1]) {
		return false
	}
	if bytes.IndexByte(body, '\n') >= 0 || bytes.IndexByte(body, '\r') >= 0 {
		return false
	}
	return utf8.Valid(body) && json.Valid(body)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it (including <, > and &), so the fallback parser and json.Marshal
// agree with it.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// rawRecord is one parsed line before its body is decoded.
type rawRecord struct {
	seq     uint64
	time    time.Time
	subject string
	header  map[string][]string
	body    []byte
	// rawBody is set when the body was taken from a canonical line's raw
	// "body" region without validating it (see checkBody).
	rawBody bool
}

// lineParser parses lines; it interns subjects and header names (a history
// has few distinct ones) so that a line costs no allocation for them. One
// parser per goroutine.
type lineParser struct {
	intern      map[string]string
	skipHeaders bool
}

func newLineParser(skipHeaders bool) *lineParser {
	return &lineParser{intern: make(map[string]string), skipHeaders: skipHeaders}
}

func (p *lineParser) str(b []byte) string {
	if s, ok := p.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(p.intern) < 1<<16 {
		p.intern[s] = s
	}
	return s
}

// parse parses one line (without its newline). The body may alias line.
func (p *lineParser) parse(line []byte) (rawRecord, error) {
	if r, ok := p.parseCanonical(line); ok {
		return r, nil
	}
	return p.parseAny(line)
}

// parseCanonical parses the exact layout AppendRecord writes, without
// allocating for the common line. ok is false for anything else, which then
// goes through parseAny.
func (p *lineParser) parseCanonical(line []byte) (r rawRecord, ok bool) {
	const (
		pSeq     = `{"seq":`
		pTime    = `,"time":"`
		pSubject = `","subject":"`
		pHeaders = `,"headers":`
		pBody    = `,"body":`
		pBody64  = `,"body_b64":"`
	)
	if len(line) < 2 || line[len(line)-1] != '}' || !bytes.HasPrefix(line, []byte(pSeq)) {
		return r, false
	}
	i := len(pSeq)
	j := i
	for j < len(line) && line[j] >= '0' && line[j] <= '9' {
		j++
	}
	if j == i || j-i > 19 || (line[i] == '0' && j-i > 1) {
		return r, false // 20-digit sequences go through the general parser
	}
	for _, c := range line[i:j] {
		r.seq = r.seq*10 + uint64(c-'0')
	}
	i = j
	if !bytes.HasPrefix(line[i:], []byte(pTime)) {
		return r, false
	}
	i += len(pTime)
	j = bytes.IndexByte(line[i:], '"')
	if j < 0 {
		return r, false
	}
	t, ok := parseUTCTime(line[i : i+j])
	if !ok {
		return r, false
	}
	r.time = t
	i += j
	if !bytes.HasPrefix(line[i:], []byte(pSubject)) {
		return r, false
	}
	i += len(pSubject)
	j = i
	for j < len(line) && line[j] != '"' {
		if c := line[j]; c == '\\' || c < 0x20 || c >= 0x80 || c == '<' || c == '>' || c == '&' {
			return r, false // escaped or non-ASCII: let the general parser decide
		}
		j++
	}
	if j >= len(line) || j == i {
		return r, false
	}
	r.subject = p.str(line[i:j])
	i = j + 1
	if bytes.HasPrefix(line[i:], []byte(pHeaders)) {
		i += len(pHeaders)
		n, h, ok := p.headers(line[i:])
		if !ok {
			return r, false
		}
		r.header = h
		i += n
	}
	switch {
	case bytes.HasPrefix(line[i:], []byte(pBody)):
		body := line[i+len(pBody) : len(line)-1]
		if len(body) == 0 || isSpace(body[0]) || isSpace(body[len(body)-1]) {
			return r, false
		}
		// The body is checked lazily: events.Decode rejects anything that
		// is not one valid JSON value, and only then does the line need
		// json.Valid (see checkBody).
		r.body = body
		r.rawBody = true
		return r, true
	case bytes.HasPrefix(line[i:], []byte(pBody64)):
		enc := line[i+len(pBody64) : len(line)-1]
		if len(enc) == 0 || enc[len(enc)-1] != '"' {
			return r, false
		}
		enc = enc[:len(enc)-1]
		body := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
		n, err := base64.StdEncoding.Decode(body, enc)
		if err != nil {
			return r, false
		}
		r.body = body[:n]
		return r, true
	}
	return r, false
}

// headers parses the canonical headers object at the start of b: keys and
// values without escapes. It returns the bytes consumed.
func (p *lineParser) headers(b []byte) (int, map[string][]string, bool) {
	if len(b) < 2 || b[0] != '{' {
		return 0, nil, false
	}
	var h map[string][]string
	if !p.skipHeaders {
		h = make(map[string][]string, 4)
	}
	i := 1
	str := func() ([]byte, bool) {
		if i >= len(b) || b[i] != '"' {
			return nil, false
		}
		j := i + 1
		for j < len(b) && b[j] != '"' {
			if c := b[j]; c == '\\' || c < 0x20 || c >= 0x80 || c == '<' || c == '>' || c == '&' {
				return nil, false
			}
			j++
		}
		if j >= len(b) {
			return nil, false
		}
		s := b[i+1 : j]
		i = j + 1
		return s, true
	}
	if b[i] == '}' {
		return 0, nil, false // "headers":{} is never written
	}
	for {
		k, ok := str()
		if !ok || i+1 >= len(b) || b[i] != ':' || b[i+1] != '[' {
			return 0, nil, false
		}
		i += 2
		var vals []string
		if i < len(b) && b[i] == ']' {
			vals = []string{}
			i++
		} else {
			for {
				v, ok := str()
				if !ok || i >= len(b) {
					return 0, nil, false
				}
				if !p.skipHeaders {
					vals = append(vals, string(v))
				}
				if b[i] == ']' {
					i++
					break
				}
				if b[i] != ',' {
					return 0, nil, false
				}
				i++
			}
		}
		if !p.skipHeaders {
			key := p.str(k)
			if _, dup := h[key]; dup {
				return 0, nil, false
			}
			if vals == nil {
				vals = []string{}
			}
			h[key] = vals
		}
		if i >= len(b) {
			return 0, nil, false
		}
		switch b[i] {
		case '}':
			return i + 1, h, true
		case ',':
			i++
		default:
			return 0, nil, false
		}
	}
}

// lineJSON is the general form of a line, for encoding/json.
type lineJSON struct {
	Seq     *uint64             `json:"seq"`
	Time    *string             `json:"time"`
	Subject *string             `json:"subject"`
	Headers map[string][]string `json:"headers"`
	Body    json.RawMessage     `json:"body"`
	BodyB64 *string             `json:"body_b64"`
}

// parseAny parses a line with encoding/json: any key order and spacing;
// unknown keys are an error (a typo must not silently drop a field).
func (p *lineParser) parseAny(line []byte) (rawRecord, error) {
	var l lineJSON
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return rawRecord{}, fmt.Errorf("not an export record: %v", err)
	}
	if dec.More() {
		return rawRecord{}, fmt.Errorf("not an export record: data after the object")
	}
	var r rawRecord
	switch {
	case l.Seq == nil:
		return r, fmt.Errorf(`missing "seq"`)
	case l.Time == nil:
		return r, fmt.Errorf(`missing "time"`)
	case l.Subject == nil || *l.Subject == "":
		return r, fmt.Errorf(`missing "subject"`)
	case l.Body != nil && l.BodyB64 != nil:
		return r, fmt.Errorf(`both "body" and "body_b64"`)
	case l.Body == nil && l.BodyB64 == nil:
		return r, fmt.Errorf(`missing "body" (or "body_b64")`)
	}
	t, err := time.Parse(time.RFC3339Nano, *l.Time)
	if err != nil {
		return r, fmt.Errorf(`"time": %v`, err)
	}
	r.seq, r.time, r.subject = *l.Seq, t, p.str([]byte(*l.Subject))
	if len(l.Headers) > 0 && !p.skipHeaders {
		r.header = l.Headers
	}
	if l.BodyB64 != nil {
		b, err := base64.StdEncoding.DecodeString(*l.BodyB64)
		if err != nil {
			return r, fmt.Errorf(`"body_b64": %v`, err)
		}
		r.body = b
	} else {
		r.body = []byte(l.Body)
	}
	return r, nil
}

// parseUTCTime parses the UTC form AppendFormat(time.RFC3339Nano) writes:
// 2006-01-02T15:04:05[.fraction]Z. Anything else (an offset, a leap second)
// returns false and goes through time.Parse.
func parseUTCTime(b []byte) (time.Time, bool) {
	if len(b) < 20 || b[len(b)-1] != 'Z' || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(b[0:4])
	month, ok2 := num(b[5:7])
	day, ok3 := num(b[8:10])
	hour, ok4 := num(b[11:13])
	minute, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	rest := b[19 : len(b)-1]
	if len(rest) > 0 {
		if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
			return time.Time{}, false
		}
		f, ok := num(rest[1:])
		if !ok {
			return time.Time{}, false
		}
		for k := len(rest) - 1; k < 9; k++ {
			f *= 10
		}
		nsec = f
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if t.Day() != day { // February 30th and the like
		return time.Time{}, false
	}
	return t, true
}

// checkBody reports whether a body taken from a canonical line is really one
// JSON value; a line whose "body" region is not (a hand-edited line with
// something after the body) must be parsed by the general parser.
func checkBody(body []byte) bool { return json.Valid(body) }
