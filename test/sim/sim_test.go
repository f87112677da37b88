package sim

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	seedFlag  = flag.Int64("seed", -1, "run only this seed (also SIM_SEED)")
	stepsFlag = flag.Int("steps", 0, "steps per seed (default 5000)")
)

// Default sizing of TestSim: seeds run until the wall-time budget is spent
// (at most maxSeeds), each of defaultSteps steps. SIM_FULL=1 (make sim) runs
// fullSeeds seeds with no budget; SIM_BUDGET overrides the budget (a Go
// duration); SIM_FIRST sets the first seed (default 1).
const (
	defaultSteps  = 5000
	defaultBudget = 45 * time.Second
	maxSeeds      = 100000
	fullSeeds     = 3000
	minGoalSeeds  = 200
)

// traceLen is how many events a failure report shows (SIM_TRACE overrides).
var traceLen = func() int {
	if n, err := strconv.Atoi(os.Getenv("SIM_TRACE")); err == nil && n > 0 {
		return n
	}
	return 80
}()

func envSeed() (uint64, bool) {
	if *seedFlag >= 0 {
		return uint64(*seedFlag), true
	}
	if s := os.Getenv("SIM_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err == nil {
			return n, true
		}
	}
	return 0, false
}

func steps() int {
	if *stepsFlag > 0 {
		return *stepsFlag
	}
	if s := os.Getenv("SIM_STEPS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return defaultSteps
}

// report reruns a failing seed with tracing on and formats the failure.
func report(opt Options, res Result) string {
	opt.Trace = traceLen
	opt.Steps = res.Violation.Step
	again := Run(opt)
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %v\n", opt.Seed, res.Violation)
	if again.Violation == nil || again.Violation.Step != res.Violation.Step || again.Violation.Msg != res.Violation.Msg {
		fmt.Fprintf(&b, "(rerun with tracing differs: %v — nondeterminism in the simulator!)\n", again.Violation)
	}
	fmt.Fprintf(&b, "last %d events:\n  %s\n", traceLen, strings.Join(again.Trace, "\n  "))
	fmt.Fprintf(&b, "state:\n%s", again.State)
	fmt.Fprintf(&b, "rerun: go test ./test/sim -run 'TestSim$' -seed %d   (or SIM_SEED=%d)\n", opt.Seed, opt.Seed)
	return b.String()
}

// runSeeds runs seeds first, first+1, ... with mk(seed) on every CPU until n
// seeds ran or the budget is spent (budget 0: no budget). It returns how many
// ran and the first failure (by seed order among those that failed).
func runSeeds(first uint64, n int, budget time.Duration, mk func(uint64) Options) (ran int, totalSteps int64, sum Stats, fail *Result, failOpt Options) {
	var (
		next     atomic.Uint64
		mu       sync.Mutex
		wg       sync.WaitGroup
		stepsRun atomic.Int64
		count    atomic.Int64
	)
	next.Store(first)
	deadline := time.Now().Add(budget)
	stop := atomic.Bool{}
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				seed := next.Add(1) - 1
				if seed >= first+uint64(n) || (budget > 0 && time.Now().After(deadline)) {
					return
				}
				opt := mk(seed)
				res := Run(opt)
				count.Add(1)
				stepsRun.Add(int64(res.Stats.Steps))
				mu.Lock()
				sum.add(res.Stats)
				mu.Unlock()
				if res.Violation != nil {
					mu.Lock()
					if fail == nil || res.Seed < fail.Seed {
						r := res
						fail, failOpt = &r, opt
					}
					mu.Unlock()
					stop.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return int(count.Load()), stepsRun.Load(), sum, fail, failOpt
}

// TestSim runs the simulation of the promise (clock rates within ±1 %,
// pauses up to the margin, every fault of the model) on as many seeds as fit
// in the budget, and must find nothing.
func TestSim(t *testing.T) {
	if seed, ok := envSeed(); ok {
		opt := DefaultOptions(seed)
		opt.Steps = steps()
		res := Run(opt)
		if res.Violation != nil {
			t.Fatal(report(opt, res))
		}
		t.Logf("seed %d: ok, %+v", seed, res.Stats)
		return
	}
	budget := defaultBudget
	n := maxSeeds
	if os.Getenv("SIM_FULL") != "" {
		budget, n = 0, fullSeeds
	}
	if s := os.Getenv("SIM_BUDGET"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			budget = d
		}
	}
	if testing.Short() {
		budget = 5 * time.Second
	}
	first := uint64(1)
	if s := os.Getenv("SIM_FIRST"); s != "" {
		if n, err := strconv.ParseUint(s, 10, 64); err == nil && n > 0 {
			first = n
		}
	}
	start := time.Now()
	st := steps()
	ran, total, sum, fail, opt := runSeeds(first, n, budget, func(seed uint64) Options {
		o := DefaultOptions(seed)
		o.Steps = st
		return o
	})
	if fail != nil {
		t.Fatal(report(opt, *fail))
	}
	el := time.Since(start)
	t.Logf("%d seeds × %d steps (%d steps) in %v: %.1f µs/step", ran, st, total, el.Round(time.Millisecond), float64(el.Microseconds())/float64(total)*float64(runtime.GOMAXPROCS(0)))
	t.Logf("totals: %+v", sum)
	if ran < minGoalSeeds && !testing.Short() {
		t.Logf("note: below the goal of %d seeds within the budget", minGoalSeeds)
	}
}

// TestSimRace runs a few seeds concurrently; meant for -race (make test runs
// `go test -race -run Race ./test/sim/...`): the runs share nothing, so the
// race detector checks that the code under test keeps no shared mutable
// state either.
func TestSimRace(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			opt := DefaultOptions(seed)
			opt.Steps = 3000
			if res := Run(opt); res.Violation != nil {
				t.Fatal(report(opt, res))
			}
		})
	}
}
