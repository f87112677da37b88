# parti — developer targets. Every target is phony; `make` alone runs `test`.

GO       ?= go
FUZZTIME ?= 10s

# has_go,DIR: a shell condition, true when DIR holds at least one .go file.
has_go = [ -n "$$(find $(1) -name '*.go' 2>/dev/null | head -n 1)" ]

.DEFAULT_GOAL := test
.PHONY: test test-integration lint bench fuzz sim demo bench-e2e chaos soak bench-report bench-consumer test-large bench-scale

# vet; every package but the pure core and the simulator with -race; the
# pure core (PURE: no goroutine, no I/O, so the race detector has nothing to
# find there and only slows its property tests five- to tenfold) and the
# pure simulator without -race (it runs inside a wall-time budget); the
# simulator's Race tests with -race; then a smoke run of every fuzz target
# (FUZZ_SMOKE each). The simulator lines are skipped while test/sim/ has no
# Go files.
FUZZ_SMOKE ?= 5s
PURE := events decider strategy liveness rawmember
PURE_RE := /($(subst $(eval) ,|,$(PURE)))(/|$$)
test:
	$(GO) vet ./...
	@pkgs="$$($(GO) list -e ./... | grep -v -E '/test/sim(/|$$)' | grep -v -E '$(PURE_RE)')"; \
	if [ -z "$$pkgs" ]; then echo "make test: no packages found" >&2; exit 1; fi; \
	echo "$(GO) test -race -count=1 <every package except the pure core and ./test/sim/...>"; \
	$(GO) test -race -count=1 $$pkgs
	$(GO) test -count=1 $(addprefix ./,$(addsuffix /...,$(PURE)))
	@if $(call has_go,test/sim); then \
		echo "$(GO) test -count=1 ./test/sim/..."; \
		$(GO) test -count=1 ./test/sim/... || exit 1; \
		echo "$(GO) test -race -count=1 -run 'Race' ./test/sim/..."; \
		$(GO) test -race -count=1 -run 'Race' ./test/sim/... || exit 1; \
	else \
		echo "test/sim: no simulator yet, skipped"; \
	fi
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZ_SMOKE)

# Integration, fault and simulation tests against a real embedded nats-server.
test-integration:
	@if $(call has_go,test); then \
		echo "$(GO) test -race -count=1 ./test/..."; \
		$(GO) test -race -count=1 ./test/...; \
	else \
		echo "test/: no integration tests yet, skipped"; \
	fi

# Large holdings (issue 11): one member holding 100,000 partitions leaves,
# closes, loses its lease and rejoins after a removal; a handler sleeping
# 10 ms per call over 10,000 partitions costs no lease and no expiry. `make
# test` runs the same tests with 6,000 partitions (and 1 ms per call).
test-large:
	PARTI_LARGE_PARTITIONS=100000 $(GO) test -count=1 -v -timeout 30m -run 'TestLargeHolding' ./test/
	PARTI_LARGE_PARTITIONS=10000 PARTI_SLOW_HANDLER_SLEEP=10ms $(GO) test -count=1 -v -timeout 30m -run 'TestSlowHandlerCostsNoLease' ./test/

# gofmt must list nothing (hidden directories, testdata and vendor skipped);
# go vet; the core-purity lint (internal/lint).
lint:
	@files="$$(find . -type d \( -name '.?*' -o -name testdata -o -name vendor \) -prune \
		-o -type f -name '*.go' -exec gofmt -l {} +)"; \
	if [ -n "$$files" ]; then echo "gofmt -l lists (run gofmt -w):" >&2; echo "$$files" >&2; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 ./internal/lint/

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# A short run of every fuzz target: each `func Fuzz...` found in a *_test.go
# file, package by package (go test -fuzz takes one target per run). Go 1.26's
# fuzz coordinator can fail a run with a bare "context deadline exceeded" as
# -fuzztime ends (go.dev/issue/75804, fixed in Go 1.27): such a run, with no
# failing input written, is run once more; any other failure fails at once.
fuzz:
	@found=0; out=$$(mktemp); trap 'rm -f $$out' EXIT; \
	for dir in $$(find . -type d \( -name '.?*' -o -name testdata -o -name vendor \) -prune \
			-o -type f -name '*_test.go' -exec grep -lE '^func Fuzz[A-Za-z0-9_]*\(' {} + \
			| sed 's|/[^/]*$$||' | sort -u); do \
		for fn in $$(grep -hoE '^func Fuzz[A-Za-z0-9_]*\(' $$dir/*_test.go | sed -e 's/^func //' -e 's/($$//' | sort -u); do \
			found=1; \
			for try in 1 2; do \
				echo "$(GO) test -run '^$$' -fuzz '^$$fn$$' -fuzztime $(FUZZTIME) $$dir"; \
				$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$dir > $$out 2>&1; rc=$$?; cat $$out; \
				[ $$rc = 0 ] && break; \
				if [ $$try = 1 ] && grep -q 'context deadline exceeded' $$out && ! grep -q 'Failing input written' $$out; then \
					echo "fuzz: $$fn ended on the -fuzztime race of Go's fuzz coordinator (go.dev/issue/75804), no failing input: once more"; \
					continue; \
				fi; \
				exit 1; \
			done; \
		done; \
	done; \
	if [ $$found = 0 ]; then echo "no fuzz targets found"; fi

# The simulator at full counts (make test runs it inside a ~60 s budget).
sim:
	@if $(call has_go,test/sim); then \
		echo "SIM_FULL=1 $(GO) test -count=1 -timeout 60m ./test/sim/..."; \
		SIM_FULL=1 $(GO) test -count=1 -timeout 60m ./test/sim/...; \
	else \
		echo "make sim: the simulator (test/sim/) is not built yet"; \
	fi

demo:
	@if $(call has_go,cmd/parti-demo); then \
		echo "$(GO) run ./cmd/parti-demo"; \
		$(GO) run ./cmd/parti-demo; \
	else \
		echo "make demo: the demo (cmd/parti-demo) is not built yet; it lands with issue 6"; \
	fi

# The end-to-end benchmark: fleets on an embedded server, one figure a line.
# RUNS=5 for a quicker, noisier pass.
RUNS ?= 20
bench-e2e:
	$(GO) run ./cmd/parti-bench --runs $(RUNS)

# The consumer helper against a plain JetStream consumer and pcgroups, and
# the member's catch-up fold against a raw read: one figure a line, medians
# of CONSUMER_RUNS runs (RUNS=1 for the quick pass). A module of its own
# (bench/consumer), so that pcgroups stays out of the library's go.mod.
CONSUMER_RUNS ?= $(if $(filter command line environment,$(origin RUNS)),$(RUNS),3)
bench-consumer:
	cd bench/consumer && RUNS=$(CONSUMER_RUNS) $(GO) run .

# The chaos test for five minutes (make test runs it for 20 s). CHAOS_SEED=N
# replays a run. 'TestChaos' also runs TestChaosStreamLeaderPause, which kills
# the stream leader's server (nats-server processes) and prints the work pause
# per profile. Then READERS_RUNS runs of parti-replay state and audit on a
# three-server cluster whose servers are shut down and restarted (make test
# makes 120): none may hang.
CHAOS_DURATION ?= 5m
READERS_RUNS ?= 600
chaos:
	CHAOS_DURATION=$(CHAOS_DURATION) $(GO) test -race -count=1 -timeout 30m -v -run 'TestChaos' ./test/
	READERS_RUNS=$(READERS_RUNS) $(GO) test -race -count=1 -timeout 30m -v -run 'TestReadersOnAClusterNeverHang' ./cmd/parti-replay/

# The bounded-resources soak: a steady group at the fast profile for
# SOAK_DURATION (make test samples it for 12 s), checking that heartbeat and
# snapshot storage stay bounded by their TTLs, the log grows only with
# changes, goroutines and heap stay flat; and a late joiner catching up from
# the snapshot of a 1,000,000-record history (make test: 50,000).
SOAK_DURATION ?= 1h
soak:
	SOAK_DURATION=$(SOAK_DURATION) $(GO) test -race -count=1 -timeout 0 -v -run 'TestBoundedResources|TestLateJoinerCatchesUpFromTheSnapshot' ./test/

# The ownership timeline page at scale: a 500-member, 100,000-partition,
# 200,000-record history (generated, or REPORT_HISTORY=FILE, kept there),
# written with parti-replay report and opened in headless Chromium; prints
# the page's size and the write and open times.
REPORT_HISTORY ?=
bench-report:
	$(GO) test -count=1 -timeout 30m -run 'TestReportAtScale' ./cmd/parti-replay -report-large $(if $(REPORT_HISTORY),-report-history $(REPORT_HISTORY))

# Scale (issue 17): a three-server embedded cluster (R3), one big group
# stepped through 50-500 members over 10,000 and 100,000 partitions (fast and
# production), a one-member process holding 100,000 partitions (RSS), and
# 10/100/1,000 idle three-member groups, and the saturation runs (a group on
# the subsecond and fast profiles for 10 minutes each while two processes
# spin on the cores, again with GC pressure in the members; then a crash).
# Built once; the binary re-executes
# itself as the worker processes. Long: hours on an idle machine. One figure a
# line, with the load average; SCALE_ARGS narrows it, e.g.
# SCALE_ARGS='--parts big --members 50 --partitions 10000 --profiles fast'.
# The servers' 1,000-consumers-per-stream default is lifted (a group holds
# about two per member); SCALE_ARGS='--max-consumers 0' keeps it.
SCALE_ARGS ?=
bench-scale:
	@bin="$$(mktemp -d)/parti-scale"; \
	$(GO) build -o "$$bin" ./cmd/parti-scale && "$$bin" --max-consumers -1 --parts big,rss,groups,saturate $(SCALE_ARGS); \
	rc=$$?; rm -rf "$$(dirname "$$bin")"; exit $$rc
