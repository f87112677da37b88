package partitest_test

import (
	"fmt"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/partitest"
)

// exampleT stands in for the *testing.T a test passes to NewGroup.
type exampleT struct{}

func (exampleT) Helper()                           {}
func (exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// Three members share six partitions; one crashes, and the others' handlers
// see its partitions arrive once it has been expired.
func Example() {
	g := partitest.NewGroup(exampleT{}, partitest.Options{
		Partitions: []string{"p0", "p1", "p2", "p3", "p4", "p5"},
	})
	printer := func(id string) parti.Handler {
		return parti.HandlerFuncs{
			OnAssigned: func(a parti.Assignment) {
				fmt.Printf("%v %s: assigned %s\n", g.Now(), id, a.Partition)
			},
			OnRevoked: func(a parti.Assignment, why parti.RevokeReason) {
				fmt.Printf("%v %s: revoked %s (%s)\n", g.Now(), id, a.Partition, why)
			},
		}
	}
	g.Join("a", printer("a"))
	b := g.Join("b", printer("b"))
	g.Join("c", printer("c"))
	g.Settle()

	fmt.Printf("%v b crashes\n", g.Now())
	b.Crash()
	g.Settle()
	fmt.Println(g.Owners())
	// Output:
	// 1s b: assigned p3
	// 1s b: assigned p5
	// 1s c: assigned p1
	// 1s c: assigned p2
	// 1s a: assigned p0
	// 1s a: assigned p4
	// 1s b crashes
	// 4.125s c: assigned p5
	// 4.125s a: assigned p3
	// map[p0:a p1:c p2:c p3:a p4:a p5:c]
}
