// Package lint holds no code, only lint_test.go: one purity lint, the same
// rules for every core package (events, decider, strategy, liveness,
// rawmember). It keeps them free of NATS, clocks, randomness, the
// environment, I/O and goroutines; within the standard-library list
// (coreStdlib) and the import layout of DESIGN.md; and lets no range over a
// map through unless a `//parti:unordered <reason>` annotation on its line
// or the line above says why its order cannot reach an output. Run it with
// `go test ./internal/lint/` (make lint).
package lint
