package lint

import (
	"bufio"
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// coreDirs are the module-relative directories under the lint, with the
// non-standard-library imports each may use besides its own subpackages
// (the layout table of DESIGN.md). Paths starting with "/" are relative to
// the module path.
var coreDirs = map[string][]string{
	"events":    nil,
	"decider":   {"/events", "/strategy"},
	"strategy":  {"github.com/cespare/xxhash/v2"},
	"liveness":  nil,
	"rawmember": {"/events", "/decider", "/liveness"},
}

// deniedImports are imports no core file may have, whatever the layout says,
// each with the reason printed. An entry ending in "/" denies every path
// under it; "/"-prefixed entries are relative to the module path, and deny
// the package and its subpackages.
var deniedImports = []struct{ path, why string }{
	{"github.com/nats-io/", "the core never talks to NATS"},
	{"github.com/synadia-io/", "the core never talks to NATS"},
	{"log/slog", "the core does not log"},
	{"os", "the core does not read the environment or files"},
	{"os/", "the core does not read the environment or files"},
	{"syscall", "the core does not make system calls"},
	{"golang.org/x/sys/", "the core does not make system calls"},
	{"math/rand", "the core is deterministic"},
	{"math/rand/v2", "the core is deterministic"},
	{"crypto/rand", "the core is deterministic"},
	{"/", "the core never imports the root package parti"},
	{"/projection", "the core never imports projection"},
	{"/replay", "the core never imports replay"},
	{"/internal/clock", "time arrives as readings; the core never reads a clock"},
}

// deniedTimeFuncs are the functions of package time that read the clock,
// sleep or start timers.
var deniedTimeFuncs = []string{
	"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker",
}

// coreStdlib is the standard library every core package may import: data
// structures, formatting, encoding and hashing. Anything else (I/O, the
// network, reflection, unsafe, the runtime) is reported, so a new need is a
// reviewed change of this list, the same for every core package.
var coreStdlib = []string{
	"bytes", "cmp", "crypto/sha256", "encoding/binary", "encoding/hex", "encoding/json",
	"errors", "fmt", "hash", "maps", "math", "math/bits", "slices", "sort", "strconv",
	"strings", "sync", "time", "unicode", "unicode/utf8",
}

// unorderedMark is the annotation that allows one range over a map: a
// comment starting with it, on the range statement's line or the line just
// above, followed by the reason the iteration order cannot reach an output
// (for example "sums counts" or "resets every member"). The reason is what
// a reviewer checks; an annotation without one, or one that excuses no map
// range, is itself a finding.
const unorderedMark = "//parti:unordered"

// TestCoreIsPure runs the checker over every package (non-test .go files)
// of the core directories and reports each violation as file:line:col.
func TestCoreIsPure(t *testing.T) {
	root, modPath, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "source", nil) // one cache for all packages
	files, pkgs := 0, 0
	for _, dir := range slices.Sorted(mapsKeys(coreDirs)) {
		base := filepath.Join(root, dir)
		if _, err := os.Stat(base); errors.Is(err, fs.ErrNotExist) {
			t.Logf("%s/ does not exist yet", dir)
			continue
		}
		byPkg := map[string][]*ast.File{} // package directory → its files
		err := filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if d.IsDir() {
				if path != base && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				return nil
			}
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			// Object resolution stays on: check uses it to tell a local
			// variable named like the time package from the package.
			f, err := parser.ParseFile(fset, filepath.ToSlash(rel), src, parser.ParseComments)
			if err != nil {
				t.Errorf("%v", err) // a file that does not parse fails the lint too
				return nil
			}
			files++
			inBuild, err := build.Default.MatchFile(filepath.Dir(path), name)
			if err != nil {
				return err
			}
			if !inBuild {
				// A file of another build (tags, GOOS) cannot be
				// type-checked with this one's: the rules that need no
				// types still apply.
				for _, v := range check(fset, f, dir, modPath) {
					t.Errorf("%s", v)
				}
				t.Logf("%s: not in this build, map ranges unchecked", rel)
				return nil
			}
			pkgDir := filepath.ToSlash(filepath.Dir(rel))
			byPkg[pkgDir] = append(byPkg[pkgDir], f)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, pkgDir := range slices.Sorted(mapsKeys(byPkg)) {
			pkgs++
			vs, err := checkPackage(fset, imp, modPath+"/"+pkgDir, byPkg[pkgDir], dir, modPath)
			if err != nil {
				t.Errorf("%s: %v", pkgDir, err)
			}
			for _, v := range vs {
				t.Errorf("%s", v)
			}
		}
	}
	if files == 0 {
		t.Fatal("no core files found: the lint checked nothing")
	}
	t.Logf("checked %d files in %d packages", files, pkgs)
}

// violation is one finding of the checker.
type violation struct {
	pos token.Position
	msg string
}

func (v violation) String() string { return fmt.Sprintf("%s: %s", v.pos, v.msg) }

// checkPackage returns the violations in files, the non-test files of the
// package pkgPath in the core directory dir (module-relative, e.g.
// "liveness") of the module modPath: those of check in each file, and those
// of checkMapRanges, which needs the package type-checked. A package that
// does not type-check is an error: the map-range rule could not run.
func checkPackage(fset *token.FileSet, imp types.Importer, pkgPath string, files []*ast.File, dir, modPath string) ([]violation, error) {
	var out []violation
	for _, f := range files {
		out = append(out, check(fset, f, dir, modPath)...)
	}
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}}
	var typeErrs []error
	conf := types.Config{Importer: imp, Error: func(err error) { typeErrs = append(typeErrs, err) }}
	_, _ = conf.Check(pkgPath, fset, files, info) // the errors are collected by Error
	out = append(out, checkMapRanges(fset, files, info)...)
	if len(typeErrs) > 0 {
		return out, fmt.Errorf("type-checking for the map-range rule: %w", errors.Join(typeErrs...))
	}
	return out, nil
}

// checkMapRanges reports every range over a map (map order must never
// reach an output: sort the keys first) that no unorderedMark annotation
// with a reason allows, and every annotation that allows nothing.
func checkMapRanges(fset *token.FileSet, files []*ast.File, info *types.Info) []violation {
	var out []violation
	report := func(p token.Pos, format string, args ...any) {
		out = append(out, violation{fset.Position(p), fmt.Sprintf(format, args...)})
	}
	for _, f := range files {
		type mark struct {
			pos    token.Pos
			reason string
			used   bool
		}
		marks := map[int]*mark{} // line → the annotation on it
		for _, cg := range f.Comments {
			for _, c := range cg.List {
				rest, ok := strings.CutPrefix(c.Text, unorderedMark)
				if !ok {
					continue
				}
				marks[fset.Position(c.Pos()).Line] = &mark{pos: c.Pos(), reason: strings.TrimSpace(rest)}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			r, ok := n.(*ast.RangeStmt)
			if !ok {
				return true
			}
			tv, ok := info.Types[r.X]
			if !ok || tv.Type == nil {
				return true
			}
			if _, isMap := tv.Type.Underlying().(*types.Map); !isMap {
				return true
			}
			line := fset.Position(r.Pos()).Line
			m := marks[line]
			if m == nil {
				m = marks[line-1]
			}
			switch {
			case m == nil:
				report(r.Pos(), "range over a map: sort the keys first, or say why the order cannot reach an output with %s <reason>", unorderedMark)
			case m.reason == "":
				m.used = true
				report(m.pos, "%s needs a reason: why the order cannot reach an output", unorderedMark)
			default:
				m.used = true
			}
			return true
		})
		for _, line := range slices.Sorted(mapsKeys(marks)) {
			if m := marks[line]; !m.used {
				report(m.pos, "%s excuses no range over a map (on its line or the next)", unorderedMark)
			}
		}
	}
	return out
}

// check returns the violations in f, a non-test file of the core directory
// dir (module-relative, e.g. "liveness") of the module modPath, that need no
// types: imports, go statements, clock reads.
func check(fset *token.FileSet, f *ast.File, dir, modPath string) []violation {
	var out []violation
	report := func(p token.Pos, format string, args ...any) {
		out = append(out, violation{fset.Position(p), fmt.Sprintf(format, args...)})
	}

	timeNames := map[string]bool{} // local names of package time
	for _, imp := range f.Imports {
		path, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			report(imp.Pos(), "bad import path %s", imp.Path.Value)
			continue
		}
		if why, denied := deniedImport(path, modPath); denied {
			report(imp.Pos(), "imports %q: %s", path, why)
		} else if isStdlib(path) && !slices.Contains(coreStdlib, path) {
			report(imp.Pos(), "imports %q: not in the core's standard-library list (coreStdlib)", path)
		} else if !allowedByLayout(path, dir, modPath) {
			report(imp.Pos(), "imports %q: not allowed for %s/ by the layout in DESIGN.md", path, dir)
		}
		if path == "time" {
			switch {
			case imp.Name == nil:
				timeNames["time"] = true
			case imp.Name.Name == ".":
				report(imp.Pos(), "dot-imports \"time\": clock reads could not be checked")
			case imp.Name.Name != "_":
				timeNames[imp.Name.Name] = true
			}
		}
	}

	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			report(n.Pos(), "go statement: the core starts no goroutines")
		case *ast.SelectorExpr:
			id, ok := n.X.(*ast.Ident)
			// id.Obj != nil: a local declaration shadows the package name.
			if ok && timeNames[id.Name] && id.Obj == nil && slices.Contains(deniedTimeFuncs, n.Sel.Name) {
				report(n.Pos(), "uses time.%s: the core never reads the clock, sleeps or starts timers", n.Sel.Name)
			}
		}
		return true
	})
	return out
}

// isStdlib reports whether path is a standard-library import path (its
// first element has no dot).
func isStdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// deniedImport reports whether path is denied, and why.
func deniedImport(path, modPath string) (string, bool) {
	for _, d := range deniedImports {
		p := d.path
		if strings.HasPrefix(p, "/") { // module-relative: the package and below
			p = strings.TrimSuffix(modPath+p, "/")
			if path == p || (p != modPath && strings.HasPrefix(path, p+"/")) {
				return d.why, true
			}
			continue
		}
		if strings.HasSuffix(p, "/") {
			if strings.HasPrefix(path, p) {
				return d.why, true
			}
			continue
		}
		if path == p {
			return d.why, true
		}
	}
	return "", false
}

// allowedByLayout reports whether a core package in dir may import path:
// the standard library, its own subpackages, and what coreDirs lists.
func allowedByLayout(path, dir, modPath string) bool {
	if isStdlib(path) {
		return true // the standard library (coreStdlib narrows it)
	}
	own := modPath + "/" + dir
	if path == own || strings.HasPrefix(path, own+"/") {
		return true
	}
	for _, a := range coreDirs[dir] {
		if strings.HasPrefix(a, "/") {
			a = modPath + a
			if path == a || strings.HasPrefix(path, a+"/") {
				return true
			}
			continue
		}
		if path == a {
			return true
		}
	}
	return false
}

// moduleRoot walks up from the working directory to go.mod and returns the
// module's root directory and path.
func moduleRoot() (dir, modPath string, err error) {
	dir, err = os.Getwd()
	if err != nil {
		return "", "", err
	}
	for {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
					return dir, strings.Trim(strings.TrimSpace(rest), `"`), nil
				}
			}
			return "", "", fmt.Errorf("%s/go.mod has no module line", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// The tests below run the checker on sources written to break it: if the
// lint lost a rule, they fail.

const testMod = "github.com/parti-io/parti"

// checkSource parses src as the file dir/x.go and returns the checker's
// findings and the expectations written as `// want "substring"` comments.
func checkSource(t *testing.T, dir, src string) (got []violation, want map[int][]string) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, dir+"/x.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	return check(fset, f, dir, testMod), wantComments(t, fset, f)
}

// wantComments returns the expectations written in f as `// want
// "substring"` comments, by line.
func wantComments(t *testing.T, fset *token.FileSet, f *ast.File) map[int][]string {
	t.Helper()
	want := map[int][]string{}
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			line := fset.Position(c.Pos()).Line
			rest, ok := strings.CutPrefix(c.Text, "// want ")
			if above, isAbove := strings.CutPrefix(c.Text, "// want-above "); isAbove {
				// For a finding on a line whose comment is the subject.
				rest, ok, line = above, true, line-1
			}
			if !ok {
				continue
			}
			for rest != "" {
				q, err := strconv.QuotedPrefix(rest)
				if err != nil {
					t.Fatalf("line %d: bad want comment %q", line, c.Text)
				}
				s, _ := strconv.Unquote(q)
				want[line] = append(want[line], s)
				rest = strings.TrimSpace(rest[len(q):])
			}
		}
	}
	return want
}

// expect asserts that got matches want exactly: every expectation is met by
// a finding on its line and every finding is expected.
func expect(t *testing.T, got []violation, want map[int][]string) {
	t.Helper()
	used := make([]bool, len(got))
	for _, line := range slices.Sorted(mapsKeys(want)) {
		for _, sub := range want[line] {
			found := false
			for i, v := range got {
				if !used[i] && v.pos.Line == line && strings.Contains(v.msg, sub) {
					used[i], found = true, true
					break
				}
			}
			if !found {
				t.Errorf("line %d: no finding containing %q", line, sub)
			}
		}
	}
	for i, v := range got {
		if !used[i] {
			t.Errorf("unexpected finding %s", v)
		}
	}
}

func TestCheckerCatchesViolations(t *testing.T) {
	const src = `package bad

import (
	"fmt"
	"os"                                  // want "imports \"os\""
	"os/exec"                             // want "imports \"os/exec\""
	"log/slog"                            // want "imports \"log/slog\""
	"math/rand"                           // want "imports \"math/rand\""
	mrand "math/rand/v2"                  // want "imports \"math/rand/v2\""
	"crypto/rand"                         // want "imports \"crypto/rand\""
	"syscall"                             // want "imports \"syscall\""
	"golang.org/x/sys/unix"               // want "imports \"golang.org/x/sys/unix\""
	"github.com/nats-io/nats.go"          // want "imports \"github.com/nats-io/nats.go\""
	"github.com/nats-io/nats.go/jetstream" // want "imports \"github.com/nats-io/nats.go/jetstream\""
	parti "github.com/parti-io/parti"     // want "root package"
	"github.com/parti-io/parti/projection" // want "projection"
	"github.com/parti-io/parti/projection/sub" // want "projection"
	"github.com/parti-io/parti/replay"    // want "replay"
	"github.com/parti-io/parti/internal/clock" // want "reads a clock"
	"github.com/cespare/xxhash/v2"        // want "not allowed for liveness/ by the layout"
	"net/http"                            // want "standard-library list"
	"reflect"                             // want "standard-library list"
	"unsafe"                              // want "standard-library list"
	"io"                                  // want "standard-library list"
	"time"
	tm "time"
)

func f(d time.Duration) {
	_ = time.Now()                    // want "time.Now"
	_ = time.Since(0)                 // want "time.Since"
	_ = time.Until(time.Time{})       // want "time.Until"
	time.Sleep(d)                     // want "time.Sleep"
	<-time.After(d)                   // want "time.After"
	time.AfterFunc(d, nil)            // want "time.AfterFunc"
	_ = time.Tick(d)                  // want "time.Tick"
	_ = time.NewTimer(d)              // want "time.NewTimer"
	_ = time.NewTicker(d)             // want "time.NewTicker"
	now := tm.Now                     // want "time.Now"
	go f(d)                           // want "go statement"
	go func() {}()                    // want "go statement"
	_, _, _, _, _, _ = fmt.Sprint, os.Args, exec.Command, slog.Info, rand.Int, mrand.Int
	_, _, _, _, _ = unix.Getpid, nats.Connect, jetstream.New, parti.X, projection.X
	_, _, _, _, _, _ = sub.X, replay.X, clock.Boot, xxhash.Sum64, syscall.Getpid, now
	_, _, _, _ = http.Get, reflect.TypeOf, unsafe.Sizeof(0), io.EOF
}
`
	got, want := checkSource(t, "liveness", src)
	if n := countWants(want); n != 32 {
		t.Fatalf("%d want comments parsed, expected 32", n)
	}
	expect(t, got, want)
}

func countWants(want map[int][]string) int {
	n := 0
	for _, w := range want {
		n += len(w)
	}
	return n
}

func TestCheckerDotImport(t *testing.T) {
	got, want := checkSource(t, "events", `package bad

import . "time" // want "dot-imports"

var _ = Now
`)
	expect(t, got, want)
}

func TestCheckerAcceptsCleanCore(t *testing.T) {
	got, want := checkSource(t, "decider", `package ok

import (
	"slices"
	"time"

	"github.com/parti-io/parti/decider/internal/x"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/strategy"
)

type fakeClock struct{}

func (fakeClock) Now() time.Duration { return 0 }

func g(d time.Duration, at time.Time) time.Duration {
	time := fakeClock{}      // shadows the package: not a clock read
	_ = time.Now()
	_ = at.Sub(at) + d + 2*timeSecond()
	_ = slices.Sort[[]int]
	_, _, _ = events.X, strategy.X, x.Y
	return 0
}

func timeSecond() time.Duration { return 1 } // the Second selector below is fine
var _ = time.Second
var _ = time.Unix(0, 0)
`)
	if len(want) != 0 {
		t.Fatal("clean source has want comments")
	}
	expect(t, got, want)
}

func TestCheckerLayout(t *testing.T) {
	tests := []struct {
		dir, path string
		ok        bool
	}{
		{"strategy", "github.com/cespare/xxhash/v2", true},
		{"liveness", "github.com/cespare/xxhash/v2", false},
		{"events", "github.com/cespare/xxhash/v2", false},
		{"decider", "github.com/parti-io/parti/events", true},
		{"decider", "github.com/parti-io/parti/strategy", true},
		{"decider", "github.com/parti-io/parti/liveness", false},
		{"events", "github.com/parti-io/parti/strategy", false},
		{"events", "github.com/parti-io/parti/decider", false},
		{"strategy", "github.com/parti-io/parti/events", false},
		{"liveness", "github.com/parti-io/parti/events", false},
		{"liveness", "github.com/parti-io/parti/liveness/internal/x", true},
		{"liveness", "github.com/parti-io/parti/livenessx", false},
		{"liveness", "github.com/google/go-cmp/cmp", false},
		{"events", "encoding/json", true},
	}
	for _, tc := range tests {
		if got := allowedByLayout(tc.path, tc.dir, testMod); got != tc.ok {
			t.Errorf("allowedByLayout(%q, %q) = %v, want %v", tc.path, tc.dir, got, tc.ok)
		}
	}
	for _, tc := range []struct {
		path   string
		denied bool
	}{
		{"os", true}, {"os/signal", true}, {"osx", false},
		{"github.com/parti-io/parti", true}, {"github.com/parti-io/parti/events", false},
		{"github.com/parti-io/parti/replay/x", true}, {"github.com/parti-io/parti/replayer", false},
		{"math/rand", true}, {"math/bits", false}, {"time", false},
	} {
		if _, got := deniedImport(tc.path, testMod); got != tc.denied {
			t.Errorf("deniedImport(%q) = %v, want %v", tc.path, got, tc.denied)
		}
	}
}

// TestCheckerMapRanges: a range over a map (named or not, from any
// expression) is a finding unless an annotation with a reason on its line or
// the line above allows it; an annotation without a reason, or one that
// allows nothing, is a finding too. Ranges over slices, strings, channels,
// integers and functions are not.
func TestCheckerMapRanges(t *testing.T) {
	const src = `package bad

import (
	"maps"
	"slices"
)

type byName map[string]int

func m() map[int]bool { return nil }

func f(a map[string]int, b byName, s []int, c chan int) (n int) {
	for k := range a { // want "range over a map"
		n += len(k)
	}
	for range b { // want "range over a map"
	}
	for k, v := range m() { // want "range over a map"
		_, _ = k, v
	}
	for _, v := range map[int]int{1: 2} { // want "range over a map"
		n += v
	}
	//parti:unordered sums the values
	for _, v := range a {
		n += v
	}
	for _, v := range b { //parti:unordered sums the values
		n += v
	}
	//parti:unordered
	for range a { // want-above "needs a reason"
	}
	//parti:unordered nothing to excuse
	for range s { // want-above "excuses no range over a map"
	}
	//parti:unordered too far above
	// want-above "excuses no range over a map"
	for range a { // want "range over a map"
	}
	for _, k := range slices.Sorted(maps.Keys(a)) {
		n += len(k)
	}
	for range "abc" {
	}
	for range c {
	}
	for range 3 {
	}
	for k := range maps.Keys(a) { // an iterator: its order is the map's, but the lint sees a function
		n += len(k)
	}
	return n
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "strategy/x.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	want := wantComments(t, fset, f)
	if n := countWants(want); n != 8 {
		t.Fatalf("%d want comments parsed, expected 8", n)
	}
	got, err := checkPackage(fset, importer.ForCompiler(fset, "source", nil), testMod+"/strategy", []*ast.File{f}, "strategy", testMod)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, got, want)
}

// TestCheckerTypeErrors: a package that does not type-check is reported
// (the map-range rule would silently check nothing).
func TestCheckerTypeErrors(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "events/x.go", "package bad\n\nvar x int = \"s\"\n", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkPackage(fset, importer.ForCompiler(fset, "source", nil), testMod+"/events", []*ast.File{f}, "events", testMod); err == nil {
		t.Fatal("a package with a type error passed")
	}
}
