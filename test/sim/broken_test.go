package sim

import (
	"slices"
	"testing"
	"time"
)

// brokenWithin is how many seeds each deliberately broken variant may take
// before the simulator must have caught it ("caught within 50 seeds").
const brokenWithin = 50

// beyondWithin is how many seeds the scenario beyond the promise may take to
// show an overlap in beliefs and a stale write rejected by the token store.
const beyondWithin = 20

// brokenSteps is the length of one run of a broken variant.
const brokenSteps = 5000

type variant struct {
	name string
	// want lists the violations that may catch it.
	want []Kind
	// scenario sets the faults the variant needs; the real code must pass
	// the same scenario on the same seeds (the control).
	scenario func(*Options)
	// breakIt applies the deliberate bug.
	breakIt func(*Options)
}

var variants = []variant{
	{
		// (a) The target acts as soon as the decision is folded, before
		// the source released.
		// The target's early write can also show first as a token out of
		// order (the source is still the owner of record).
		name:     "assign-before-release",
		want:     []Kind{KindOverlap, KindAppOverlap, KindStaleWrite},
		scenario: func(*Options) {},
		breakIt:  func(o *Options) { o.Broken.AssignBeforeRelease = true },
	},
	{
		// (b) Lease = Expiry, beyond Expiry − Margin: a member that fell
		// silent (isolated) and then pauses, within the margin, just
		// before its lease ends acts after its judge expired it. The
		// scenario makes isolations and pauses (up to the margin) frequent.
		name: "lease-at-expiry",
		want: []Kind{KindOverlap, KindAppOverlap},
		scenario: func(o *Options) {
			o.PauseRate, o.IsolateRate = 1.5, 0.15
		},
		breakIt: func(o *Options) { o.Timings.Lease = o.Timings.Expiry },
	},
	{
		// (c) Heartbeats without the expected-sequence fence: a member's
		// heartbeat lands after the verdict against it and renews its
		// lease.
		name:     "unfenced-heartbeats",
		want:     []Kind{KindOverlap, KindAppOverlap},
		scenario: func(*Options) {},
		breakIt:  func(o *Options) { o.Broken.UnfencedHeartbeats = true },
	},
	{
		// (d) Expiry judged without the judge's no-gap condition, with
		// stream stalls longer than the expiry: healthy members are
		// expired when the stream comes back.
		name: "judge-ignores-own-gaps",
		want: []Kind{KindHealthyExpired},
		scenario: func(o *Options) {
			o.MaxStall = 8 * time.Second
		},
		breakIt: func(o *Options) { o.Broken.JudgeIgnoresOwnGaps = true },
	},
	{
		// (e) Verdicts judged on the server's clock: the judge dates the
		// victim's heartbeats by their server timestamps, mapped onto its
		// own clock by the offset it measured at the first one. With the
		// server's clock stepping often and by up to 5 s (stream-leader
		// changes to servers whose clocks differ, NTP steps), a step back
		// makes a heartbeating member look silent: it is expired although
		// healthy, or while it still holds its lease. A step forward expires
		// a dead one late. The real code never reads server time (rule 1;
		// only the heartbeats' TTLs run on it).
		name: "judge-on-server-clock",
		want: []Kind{KindHealthyExpired, KindOverlap, KindAppOverlap, KindLiveness},
		scenario: func(o *Options) {
			o.SkewRate, o.MaxSkewStep = 0.2, 5*time.Second
		},
		breakIt: func(o *Options) { o.Broken.JudgeClock = JudgeServerClock },
	},
	{
		// (f) Verdicts judged on the victim's clock: the judge dates the
		// victim's heartbeats by the victim's own reading when it sent
		// them (the simulator carries it with each heartbeat, as a header
		// a broken implementation would add), mapped onto its own clock by
		// the offset it measured at the first one. It is right while the
		// two clocks run at one rate. The scenario lets clock rates spread
		// ±10 %, beyond the promise's ±1 %, and bounds pauses to 1 s so that
		// the inequality behind the promise still holds (lease/0.9 + pause
		// + one step = 2.61 s < expiry/1.1 = 2.73 s): the real code owes
		// every check. A victim whose clock runs slower than its judge's
		// looks older and older and is expired although healthy, or while
		// it still holds its lease; one whose clock runs faster is expired
		// late once dead.
		name: "judge-on-victim-clock",
		want: []Kind{KindHealthyExpired, KindOverlap, KindAppOverlap, KindLiveness},
		scenario: func(o *Options) {
			o.RateSpread, o.MaxPause = 0.1, time.Second
		},
		breakIt: func(o *Options) { o.Broken.JudgeClock = JudgeVictimClock },
	},
}

// TestBrokenVariantsAreCaught checks that the simulator has teeth: each
// deliberately broken variant must break an invariant within brokenWithin
// seeds, while the real code passes the same scenario on the same seeds.
// It also runs the scenario beyond the promise.
func TestBrokenVariantsAreCaught(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			mk := func(broken bool) func(uint64) Options {
				return func(seed uint64) Options {
					o := DefaultOptions(seed)
					o.Steps = brokenSteps
					v.scenario(&o)
					if broken {
						v.breakIt(&o)
					}
					return o
				}
			}
			ran, _, _, fail, opt := runSeeds(1, brokenWithin, 0, mk(true))
			if fail == nil {
				t.Fatalf("%s was not caught within %d seeds", v.name, ran)
			}
			if !slices.Contains(v.want, fail.Violation.Kind) {
				t.Fatalf("%s caught by the wrong check, want one of %v:\n%s", v.name, v.want, report(opt, *fail))
			}
			t.Logf("%s caught by seed %d (bound %d): %v", v.name, fail.Seed, brokenWithin, fail.Violation)
			// The control: the real code, same scenario, same seeds.
			if _, _, _, cfail, copt := runSeeds(1, int(fail.Seed), 0, mk(false)); cfail != nil {
				t.Fatalf("the real code fails the %s scenario:\n%s", v.name, report(copt, *cfail))
			}
		})
	}
	t.Run("pause-beyond-margin", func(t *testing.T) {
		t.Parallel()
		testBeyondPromise(t)
	})
}

// testBeyondPromise runs the scenario beyond the promise: pauses far longer
// than the margin. A paused member keeps its belief (it checked its lease
// before the pause) while its judge expires it and its partitions move, so
// beliefs must overlap. Every superseded owner must hold a token below the
// current owner's and the store must never reject the current owner
// (KindStaleWrite otherwise), so it rejects the stale owner's writes once
// the new owner wrote; every other check still holds.
func testBeyondPromise(t *testing.T) {
	ran, _, sum, fail, opt := runSeeds(1, beyondWithin, 0, func(seed uint64) Options {
		o := DefaultOptions(seed)
		o.Steps = brokenSteps
		o.LongPauses, o.ExpectOverlap = true, true
		return o
	})
	if fail != nil {
		t.Fatal(report(opt, *fail))
	}
	if sum.Overlaps == 0 || sum.StaleRejected == 0 {
		t.Fatalf("no overlap with a rejected stale write in %d seeds: %+v", ran, sum)
	}
	t.Logf("beyond the promise, %d seeds: %d steps with overlapping beliefs, %d writes, %d rejected, %d of them by superseded owners (the current owner never rejected)",
		ran, sum.Overlaps, sum.Writes, sum.Rejected, sum.StaleRejected)
}
