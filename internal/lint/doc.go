// Package lint holds no code, only lint_test.go: a test that keeps the
// deterministic core (events, decider, strategy, liveness) free of NATS,
// clocks, randomness, the environment and goroutines, and within the import
// layout of DESIGN.md. Run it with `go test ./internal/lint/` (make lint).
package lint
