package replay

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/parti-io/parti/events"
)

// oddRecords are records whose bodies, subjects and headers exercise every
// branch of the format.
func oddRecords() []events.Record {
	t := time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.UTC)
	mk := func(seq uint64, subject string, h map[string][]string, body string) events.Record {
		return events.NewRecord(seq, t.Add(time.Duration(seq)*time.Millisecond), subject, h, []byte(body))
	}
	return []events.Record{
		mk(1, "parti.g.log", nil, `{"v":1,"t":2,"e":{"nonce":"a","max_protocol":1}}`),
		mk(2, "parti.g.log", map[string][]string{"Nats-Expected-Last-Subject-Sequence": {"1"}, "X-Odd": {"a\"b", "<&>", ""}, "Empty": {}}, `{"v":1,"t":9,"e":{}}`),
		mk(3, "parti.g.log", nil, ``),                // empty body
		mk(4, "parti.g.log", nil, "not json at all"), // garbage
		mk(5, "parti.g.log", nil, "{\"a\":\n1}"),     // valid JSON with a line break
		mk(6, "parti.g.log", nil, ` {"a":1}`),        // leading space
		mk(7, "parti.g.log", nil, "\xff\xfe{"),       // binary
		mk(8, "parti.g.log", nil, `"just a string"`), // valid JSON, not an object
		mk(9, "parti.g.log", nil, `null`),            // valid JSON null
		mk(10, "parti.g.hb.w-1.1", nil, `{"v":1,"t":100,"e":{"n":"x","a":3}}`),
		mk(11, "parti.g.log", nil, `{"v":9,"t":2,"e":{}}`), // newer version
		mk(12, "parti.g.log", nil, `{"a":"\u2028 é 日本"}`),  // unicode in a raw body
		mk(0, "parti.g.log", nil, `{"v":1,"t":5,"e":{}}`),  // sequence 0
		events.NewRecord(13, time.Date(1999, 12, 31, 23, 59, 59, 0, time.FixedZone("x", 3600)), "parti.g.snap", nil, []byte(`{}`)),
	}
}

func export(t testing.TB, recs []events.Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Export(&buf, recs); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExportImportExportIsByteIdentical(t *testing.T) {
	for name, recs := range map[string][]events.Record{"odd": oddRecords(), "scenario": scenario(t), "violations": violations(t)} {
		t.Run(name, func(t *testing.T) {
			first := export(t, recs)
			back, err := Import(bytes.NewReader(first))
			if err != nil {
				t.Fatal(err)
			}
			if len(back) != len(recs) {
				t.Fatalf("imported %d records, exported %d", len(back), len(recs))
			}
			second := export(t, back)
			if !bytes.Equal(first, second) {
				t.Fatalf("export → import → export differs:\n%s", cmp.Diff(string(first), string(second)))
			}
			// The imported records are the records: same bodies, same
			// decoding.
			opts := []cmp.Option{cmpopts.EquateEmpty(), cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
				cmp.Comparer(func(a, b error) bool { return (a == nil) == (b == nil) })}
			if diff := cmp.Diff(recs, back, opts...); diff != "" {
				t.Fatalf("imported records differ (-exported +imported):\n%s", diff)
			}
		})
	}
}

func TestExportFormat(t *testing.T) {
	got := string(export(t, oddRecords()[:5]))
	want := `{"parti_export":1,"group":"g"}
{"seq":1,"time":"2026-01-02T03:04:05.121Z","subject":"parti.g.log","body":{"v":1,"t":2,"e":{"nonce":"a","max_protocol":1}}}
{"seq":2,"time":"2026-01-02T03:04:05.122Z","subject":"parti.g.log","headers":{"Empty":[],"Nats-Expected-Last-Subject-Sequence":["1"],"X-Odd":["a\"b","\u003c\u0026\u003e",""]},"body":{"v":1,"t":9,"e":{}}}
{"seq":3,"time":"2026-01-02T03:04:05.123Z","subject":"parti.g.log","body_b64":""}
{"seq":4,"time":"2026-01-02T03:04:05.124Z","subject":"parti.g.log","body_b64":"bm90IGpzb24gYXQgYWxs"}
{"seq":5,"time":"2026-01-02T03:04:05.125Z","subject":"parti.g.log","body_b64":"eyJhIjoKMX0="}
{"parti_export_end":1,"group":"g","records":5}
`
	if got != want {
		t.Fatalf("export:\n%s", cmp.Diff(want, got))
	}
}

func TestImportAcceptsOtherLayouts(t *testing.T) {
	in := `
{ "subject": "parti.g.log", "seq": 7, "body": {"v":1, "t":3, "e":{"member":"a","inc":1}}, "time": "2026-01-02T04:04:05.5+01:00" }

{"seq":8,"time":"2026-01-02T03:04:06Z","subject":"parti.g.log","headers":{"A":["x\"y"]},"body_b64":"e30="}` + "\r\n"
	recs, err := Import(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if r.Seq != 7 || !r.Time.Equal(time.Date(2026, 1, 2, 3, 4, 5, 5e8, time.UTC)) || string(r.Body) != `{"v":1, "t":3, "e":{"member":"a","inc":1}}` {
		t.Fatalf("record 0: %+v", r)
	}
	if _, ok := r.Event.(*events.MemberLeft); !ok {
		t.Fatalf("record 0 decodes to %T (%v)", r.Event, r.Err)
	}
	if got := recs[1].Header["A"]; len(got) != 1 || got[0] != `x"y` || string(recs[1].Body) != "{}" {
		t.Fatalf("record 1: %+v", recs[1])
	}
}

func TestImportErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"not json", "{\"seq\":1,\"time\":\"2026-01-02T03:04:05Z\",\"subject\":\"a.b.log\",\"body\":{}}\nhello\n", ":2: not an export record"},
		{"no seq", `{"time":"2026-01-02T03:04:05Z","subject":"a.b.log","body":{}}`, `:1: missing "seq"`},
		{"two bodies", `{"seq":1,"time":"2026-01-02T03:04:05Z","subject":"a.b.log","body":{},"body_b64":""}`, `both "body" and "body_b64"`},
		{"bad time", `{"seq":1,"time":"yesterday","subject":"a.b.log","body":{}}`, `"time"`},
		{"unknown key", `{"seq":1,"time":"2026-01-02T03:04:05Z","subject":"a.b.log","body":{},"bdy":1}`, `unknown field`},
		{"trailing junk after body", `{"seq":1,"time":"2026-01-02T03:04:05Z","subject":"a.b.log","body":{"v":1},"x":2}`, `unknown field`},
		{"bad base64", `{"seq":1,"time":"2026-01-02T03:04:05Z","subject":"a.b.log","body_b64":"!!"}`, `"body_b64"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Import(strings.NewReader(tc.in))
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrFormat containing %q", err, tc.want)
			}
		})
	}
}

func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenFile(filepath.Join(dir, "missing.jsonl"), ""); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	empty := filepath.Join(dir, "empty.jsonl")
	os.WriteFile(empty, nil, 0o600)
	if _, err := OpenFile(empty, ""); err == nil || !strings.Contains(err.Error(), "holds no records") {
		t.Fatalf("empty file: %v", err)
	}
	notExport := filepath.Join(dir, "x.jsonl")
	os.WriteFile(notExport, []byte("# a comment\n"), 0o600)
	if _, err := OpenFile(notExport, ""); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "x.jsonl:1") {
		t.Fatalf("not an export: %v", err)
	}
	good := filepath.Join(dir, "g.jsonl")
	os.WriteFile(good, export(t, scenario(t)), 0o600)
	src, err := OpenFile(good, "")
	if err != nil {
		t.Fatal(err)
	}
	if g := src.Subjects().Group; g != "orders" {
		t.Fatalf("group %q", g)
	}
}

// TestFileScanMatchesMemory reads a large export (several chunks, on every
// worker) and checks every record arrives, in order, as exported.
func TestFileScanMatchesMemory(t *testing.T) {
	var recs []events.Record
	base := scenario(t)
	for i := range 800 {
		for _, r := range base {
			r.Seq += uint64(i * len(base))
			recs = append(recs, r)
		}
	}
	path := filepath.Join(t.TempDir(), "big.jsonl")
	if err := os.WriteFile(path, export(t, recs), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := OpenFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range []ScanOptions{{}, {LogOnly: true, SkipHeaders: true}, {From: 5000}} {
		i := 0
		err = src.Scan(t.Context(), opts, func(r *events.Record) error {
			for i < len(recs) && (recs[i].Seq < opts.From || (opts.LogOnly && recs[i].Subject != "parti.orders.log")) {
				i++
			}
			want := recs[i]
			if r.Seq != want.Seq || r.Subject != want.Subject || !bytes.Equal(r.Body, want.Body) || !r.Time.Equal(want.Time) {
				t.Fatalf("%+v: record %d: got seq %d, want seq %d", opts, i, r.Seq, want.Seq)
			}
			if !opts.SkipHeaders && len(r.Header) != len(want.Header) {
				t.Fatalf("record %d: headers %v, want %v", i, r.Header, want.Header)
			}
			i++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzExportLine(f *testing.F) {
	f.Add(uint64(1), "parti.g.log", "k", "v", []byte(`{"v":1,"t":2,"e":{}}`))
	f.Add(uint64(0), "parti.g.hb.a.1", "", "", []byte("\n"))
	f.Add(uint64(1<<63), "a\"b", "<", "\xff", []byte(` {}`))
	f.Fuzz(func(t *testing.T, seq uint64, subject, hk, hv string, body []byte) {
		var h map[string][]string
		if hk != "" {
			h = map[string][]string{hk: {hv}}
		}
		r := events.NewRecord(seq, time.Unix(0, int64(seq>>2)).UTC(), subject, h, body)
		line, err := AppendRecord(nil, &r)
		if err != nil {
			return // not representable: a subject or header that is not UTF-8
		}
		back, err := Import(bytes.NewReader(line))
		if subject == "" {
			if err == nil {
				t.Fatalf("empty subject imported")
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if len(back) != 1 || back[0].Seq != seq || back[0].Subject != subject || !bytes.Equal(back[0].Body, body) || !back[0].Time.Equal(r.Time) {
			t.Fatalf("%q imported as %+v", line, back)
		}
		again, err := AppendRecord(nil, &back[0])
		if err != nil || !bytes.Equal(line, again) {
			t.Fatalf("re-export differs:\n%q\n%q (%v)", line, again, err)
		}
	})
}
