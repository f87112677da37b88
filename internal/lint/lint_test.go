package lint

import (
	"bufio"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
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

// TestCoreIsPure runs the checker over every non-test .go file of the core
// directories and reports each violation as file:line:col.
func TestCoreIsPure(t *testing.T) {
	root, modPath, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	files := 0
	for _, dir := range slices.Sorted(mapsKeys(coreDirs)) {
		base := filepath.Join(root, dir)
		if _, err := os.Stat(base); errors.Is(err, fs.ErrNotExist) {
			t.Logf("%s/ does not exist yet", dir)
			continue
		}
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
			// Mode 0 keeps object resolution: check uses it to tell a local
			// variable named like the time package from the package.
			f, err := parser.ParseFile(fset, filepath.ToSlash(rel), src, 0)
			if err != nil {
				t.Errorf("%v", err) // a file that does not parse fails the lint too
				return nil
			}
			files++
			for _, v := range check(fset, f, dir, modPath) {
				t.Errorf("%s", v)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files == 0 {
		t.Fatal("no core files found: the lint checked nothing")
	}
	t.Logf("checked %d files", files)
}

// violation is one finding of the checker.
type violation struct {
	pos token.Position
	msg string
}

func (v violation) String() string { return fmt.Sprintf("%s: %s", v.pos, v.msg) }

// check returns the violations in f, a non-test file of the core directory
// dir (module-relative, e.g. "liveness") of the module modPath.
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
	first, _, _ := strings.Cut(path, "/")
	if !strings.Contains(first, ".") {
		return true // standard library
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
	want = map[int][]string{}
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			rest, ok := strings.CutPrefix(c.Text, "// want ")
			if !ok {
				continue
			}
			line := fset.Position(c.Pos()).Line
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
	return check(fset, f, dir, testMod), want
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
}
`
	got, want := checkSource(t, "liveness", src)
	if n := countWants(want); n != 28 {
		t.Fatalf("%d want comments parsed, expected 28", n)
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
