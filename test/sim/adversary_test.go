package sim

// The old behaviours of issue 12's items 1–3, 5 and 7, injected as drivers
// broken on purpose (adversary.go): the adversary must find each within
// brokenWithin seeds, while the real code passes the same scenario on the
// same seeds (TestBrokenVariantsAreCaught runs them with the others).
var adversaryVariants = []variant{
	{
		// Item 1: the judge's driver drops junk, so a verdict fenced on
		// the victim's last heartbeat is refused for ever once junk lands
		// after it: a crashed member is never expired.
		name: "judge-drops-junk",
		want: []Kind{KindLiveness, KindHealthyExpired, KindSlowExpiry},
		scenario: func(o *Options) {
			o.Adversary.JunkRate = 3
		},
		breakIt: func(o *Options) { o.Adversary.BrokenDropJunk = true },
	},
	{
		// Item 5: a refused heartbeat's resolution takes any verdict,
		// whoever it names, as its own expiry: an old verdict copied onto
		// a live member's subject stops it.
		name: "resolution-obeys-any-verdict",
		want: []Kind{KindHealthyExpired},
		scenario: func(o *Options) {
			o.Adversary.ReplayRate = 3
		},
		breakIt: func(o *Options) { o.Adversary.BrokenAnyVerdict = true },
	},
	{
		// Item 3: a force-expire naming no incarnation removes the member
		// at once, while it still acts on its lease: its partitions go to
		// others before it stops.
		name: "force-expire-at-once",
		want: []Kind{KindOverlap, KindAppOverlap},
		scenario: func(o *Options) {
			o.Adversary.OperatorRate, o.FoldStallRate = 2, 0.3
		},
		breakIt: func(o *Options) { o.Adversary.BrokenUnnamedForce = true },
	},
	{
		// Item 2: after a refused heartbeat's resolution adopted the
		// subject's last sequence, the next heartbeat waits for the next
		// interval: junk landing about as often as heartbeats keeps a live
		// member's heartbeats refused until its judge expires it.
		name: "heartbeat-waits-after-adopt",
		want: []Kind{KindHealthyExpired},
		scenario: func(o *Options) {
			// Junk every 100 ms on average on one member's subject
			// (its judge's heartbeats go through).
			o.Adversary.JunkRate, o.Adversary.FocusJunk = 10, true
		},
		breakIt: func(o *Options) { o.Adversary.BrokenWaitAfterAdopt = true },
	},
	{
		// Item 7: the fold remembers the nonces of current members and
		// waiting claims only, so a past incarnation's claim, replayed, is
		// accepted and granted once the ID is free: a ghost owning
		// partitions with no process behind it.
		name: "fold-forgets-retired-nonces",
		want: []Kind{KindGhost},
		scenario: func(o *Options) {
			o.Adversary.ClaimReplayRate = 2
		},
		breakIt: func(o *Options) { o.Adversary.BrokenForgetNonces = true },
	},
}

func init() { variants = append(variants, adversaryVariants...) }
