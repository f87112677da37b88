package strategy

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// allowedImports is everything the strategy package may import: the
// standard library pieces it needs and xxhash. No clock, no randomness, no
// I/O, no logging, no per-process hashing.
var allowedImports = []string{
	"cmp", "errors", "fmt", "math", "math/bits", "slices", "sort", "strconv", "strings",
	"github.com/cespare/xxhash/v2",
}

// TestLint keeps the package pure: only allowed imports, no goroutines, and
// no range over a map (map order must never reach an output).
func TestLint(t *testing.T) {
	fset := token.NewFileSet()
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !slices.Contains(allowedImports, p) {
				t.Errorf("%s: imports %q; the strategy package may import only %q", fset.Position(imp.Pos()), p, allowedImports)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if g, ok := n.(*ast.GoStmt); ok {
				t.Errorf("%s: go statement: strategies never start goroutines", fset.Position(g.Pos()))
			}
			return true
		})
	}
	if len(files) == 0 {
		t.Fatal("no source files found")
	}

	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil), Error: func(error) {}}
	if _, err := conf.Check("github.com/parti-io/parti/strategy", fset, files, info); err != nil {
		t.Fatalf("type-checking the package for the map-range check: %v", err)
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			r, ok := n.(*ast.RangeStmt)
			if !ok {
				return true
			}
			if tv, ok := info.Types[r.X]; ok {
				if _, isMap := tv.Type.Underlying().(*types.Map); isMap {
					t.Errorf("%s: range over a map: sort the keys first", fset.Position(r.Pos()))
				}
			}
			return true
		})
	}
}
