package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// ErrInvalidConfig is wrapped by every configuration error; the message names
// the field.
var ErrInvalidConfig = errors.New("consumer: invalid config")

// Placeholder is the token of a subject template that stands for the
// partition ID.
const Placeholder = "{partition}"

// Handler processes one message of a partition the member owns. It runs on
// its own goroutine; at most one message of a partition is being handled at
// a time, in stream order. ctx is cancelled when the partition is revoked
// (moved, lease lost, member stopping): return promptly then, the hand-off
// waits for you.
//
// Returning nil settles the message: the partition's floor moves past it
// (written within Config.CommitInterval, or confirmed before the partition's
// next message with Config.ConfirmEach). An
// error, or a panic, is a failure: the message is retried after a back-off,
// blocking its partition, and goes to the dead-letter subject once
// Config.MaxDeliveries attempts failed. Wrap an error with ErrPermanent to
// dead-letter the message at once.
//
// In manual-ack mode (Config.ManualAck) returning nil hands the message over
// to you: settle it later, from any goroutine, with Msg.Ack or Msg.Nak. The
// partition's next message waits until you do.
type Handler func(ctx context.Context, m *Msg) error

// Config configures the helper. The zero value of every optional field means
// its default; Validate names the field of every error.
type Config struct {
	// Stream is the user's stream holding the partitions' messages.
	// Required.
	Stream string
	// Subject is the subject template: the partition's messages are those
	// whose subject is Subject with "{partition}" replaced by the partition
	// ID, which must then be one subject token. Required unless SubjectFunc
	// and PartitionOf are set.
	Subject string
	// SubjectFunc and PartitionOf replace Subject for partition IDs that are
	// not single tokens: SubjectFunc maps a partition to its literal subject,
	// PartitionOf maps a message subject back to its partition ("" when none).
	// Both or neither.
	SubjectFunc func(partition string) string
	PartitionOf func(subject string) string
	// StartNew makes partitions that never had a floor start with the
	// messages published after the floor stream was created (default: the
	// whole of Stream). It has no effect once the floor stream exists.
	StartNew bool
	// FloorStream names the stream the helper creates to keep each
	// partition's floor (default PARTI_<group>_<Stream>_FLOORS), on subjects
	// parti-floor.<FloorStream>.>. After migrating a group to a new
	// generation (a new group ID), name the old group's floor stream here so
	// that its partitions resume where they were.
	FloorStream string
	// Handler processes messages. Required.
	Handler Handler
	// ManualAck: the handler settles each message itself with Msg.Ack or
	// Msg.Nak (see Handler).
	ManualAck bool
	// CommitInterval is how often the member writes its progress record,
	// one record carrying the floors of every partition that processed
	// messages (default 20 ms); each partition's own floor record follows
	// every 5 s. A floor is always written and confirmed before a
	// partition is handed off; after a crash, the messages handled since
	// the member's last progress record (about the last CommitInterval) are
	// handled again by the next owners.
	CommitInterval time.Duration
	// MaxFloorWrites bounds the partitions' own floor-record writes per
	// second of the background writer (default 10,000): with more busy
	// partitions than that, each one's record is written less often (the
	// longest unwritten first), so that the writes do not crowd out the
	// deliveries. Hand-offs, progress records and ConfirmEach are not
	// bounded by it.
	MaxFloorWrites int
	// ConfirmEach writes and confirms a partition's floor after every
	// message, before its next message starts: after a crash only the
	// messages being handled are handled again (at most one per partition),
	// but every message costs a write and a round trip to the server (about
	// a tenth of the throughput; see the package doc).
	ConfirmEach bool
	// MaxInFlight bounds the messages being handled (or, in manual-ack
	// mode, not yet settled) at once, over all partitions (default 256).
	MaxInFlight int
	// FiltersPerConsumer bounds the partitions one consumer of the member
	// covers (default 1,024): the server checks a consumer's filter subjects
	// pairwise when it is created, and with file storage one consumer of
	// thousands of subjects delivers slower than a few dealt ones (see the
	// package doc).
	FiltersPerConsumer int
	// PartitionBuffer bounds the messages one partition holds while it waits
	// (default 64): more are dropped and read again once it drained, so that
	// a blocked partition neither grows without bound nor stalls the others.
	PartitionBuffer int
	// MaxDeliveries is the number of failed attempts after which a message
	// goes to the dead-letter subject (default 5; negative: never, the
	// message blocks its partition until it succeeds). A hand-off restarts
	// the count.
	MaxDeliveries int
	// Backoff is the wait before each retry of a failed message, the last
	// entry repeating (default 100 ms, 500 ms, 2 s, 5 s).
	Backoff []time.Duration
	// DeadLetter is the dead-letter subject template ("{partition}" allowed).
	// Default parti-dlq.<group>.<Stream>.{partition}, stored in a stream the
	// helper creates (PARTI_<group>_<Stream>_DLQ); a subject you set must be
	// stored by a stream of yours, or dead-lettering fails and the message
	// keeps blocking its partition.
	DeadLetter string
	// DrainTimeout bounds how long a hand-off waits for running handlers
	// (default 30 s). Past it the member stops acting (as after a crash): the
	// partitions move when it is expired, never while its handlers may run
	// unseen.
	DrainTimeout time.Duration
	// OpTimeout bounds each request to the server (default 5 s).
	OpTimeout time.Duration
	// CheckInterval is how often the member's consumers are checked against
	// their expected configuration (default 30 s; negative disables).
	CheckInterval time.Duration
	// Logger receives the helper's logs (default: the member's logger).
	Logger *slog.Logger
	// Metrics receives the helper's metrics (default: none).
	Metrics Metrics
}

func (c *Config) setDefaults(group string, memberLog *slog.Logger) {
	if c.FloorStream == "" {
		c.FloorStream = "PARTI_" + group + "_" + c.Stream + "_FLOORS"
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = 20 * time.Millisecond
	}
	if c.MaxFloorWrites == 0 {
		c.MaxFloorWrites = 10_000
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 256
	}
	if c.FiltersPerConsumer == 0 {
		c.FiltersPerConsumer = 1024
	}
	if c.PartitionBuffer == 0 {
		c.PartitionBuffer = 64
	}
	if c.MaxDeliveries == 0 {
		c.MaxDeliveries = 5
	}
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second, 5 * time.Second}
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = 5 * time.Second
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = memberLog
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = NopMetrics{}
	}
}

// defaultDeadLetter reports whether the dead-letter subject is the helper's
// own (and so is its stream).
func (c *Config) defaultDeadLetter() bool { return c.DeadLetter == "" }

func (c *Config) deadLetterTemplate(group string) string {
	if c.DeadLetter != "" {
		return c.DeadLetter
	}
	return "parti-dlq." + group + "." + c.Stream + "." + Placeholder
}

func fieldErr(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
}

// Validate checks the configuration (after defaults) for group and returns
// an error naming the first invalid field.
func (c Config) Validate(group string) error {
	c.setDefaults(group, nil)
	if !validName(c.Stream) {
		return fieldErr("Stream", "%q is not a valid stream name", c.Stream)
	}
	if (c.SubjectFunc == nil) != (c.PartitionOf == nil) {
		return fieldErr("SubjectFunc", "and PartitionOf must be set together")
	}
	if c.SubjectFunc == nil {
		if c.Subject == "" {
			return fieldErr("Subject", "is required (or SubjectFunc and PartitionOf)")
		}
		if _, err := parseTemplate(c.Subject); err != nil {
			return fieldErr("Subject", "%q: %v", c.Subject, err)
		}
	}
	if !validName(c.FloorStream) {
		return fieldErr("FloorStream", "%q is not a valid stream name", c.FloorStream)
	}
	if c.Handler == nil {
		return fieldErr("Handler", "is required")
	}
	if c.MaxInFlight < 1 {
		return fieldErr("MaxInFlight", "(%d) must be ≥ 1", c.MaxInFlight)
	}
	if c.CommitInterval < 0 {
		return fieldErr("CommitInterval", "(%v) must be > 0", c.CommitInterval)
	}
	if c.MaxFloorWrites < 1 {
		return fieldErr("MaxFloorWrites", "(%d) must be ≥ 1", c.MaxFloorWrites)
	}
	if c.FiltersPerConsumer < 1 {
		return fieldErr("FiltersPerConsumer", "(%d) must be ≥ 1", c.FiltersPerConsumer)
	}
	if c.PartitionBuffer < 1 {
		return fieldErr("PartitionBuffer", "(%d) must be ≥ 1", c.PartitionBuffer)
	}
	for i, b := range c.Backoff {
		if b < 0 {
			return fieldErr("Backoff", "[%d] (%v) must be ≥ 0", i, b)
		}
	}
	dl := c.deadLetterTemplate(group)
	if !validSubject(strings.ReplaceAll(dl, Placeholder, "x"), false) {
		return fieldErr("DeadLetter", "%q is not a valid subject template", dl)
	}
	if c.DrainTimeout <= 0 {
		return fieldErr("DrainTimeout", "(%v) must be > 0", c.DrainTimeout)
	}
	if c.OpTimeout <= 0 {
		return fieldErr("OpTimeout", "(%v) must be > 0", c.OpTimeout)
	}
	return nil
}

// template is a parsed subject template: the partition fills one token.
type template struct {
	tokens []string
	at     int // index of the partition token
}

func parseTemplate(s string) (template, error) {
	toks := strings.Split(s, ".")
	at := -1
	for i, t := range toks {
		switch {
		case t == Placeholder:
			if at >= 0 {
				return template{}, errors.New(Placeholder + " appears more than once")
			}
			at = i
		case strings.Contains(t, Placeholder):
			return template{}, errors.New(Placeholder + " must be a whole token")
		case t == "" || t == "*" || t == ">" || strings.ContainsAny(t, " \t\r\n"):
			return template{}, fmt.Errorf("token %d (%q) must be a literal", i, t)
		}
	}
	if at < 0 {
		return template{}, errors.New("has no " + Placeholder)
	}
	return template{tokens: toks, at: at}, nil
}

func (t template) subject(partition string) string {
	toks := append([]string(nil), t.tokens...)
	toks[t.at] = partition
	return strings.Join(toks, ".")
}

// partitionOf returns the partition of subject, or "" when subject does not
// fit the template.
func (t template) partitionOf(subject string) string {
	n := 0
	start := 0
	var part string
	for i := 0; i <= len(subject); i++ {
		if i < len(subject) && subject[i] != '.' {
			continue
		}
		tok := subject[start:i]
		if n >= len(t.tokens) {
			return ""
		}
		if n == t.at {
			part = tok
		} else if tok != t.tokens[n] {
			return ""
		}
		n++
		start = i + 1
	}
	if n != len(t.tokens) {
		return ""
	}
	return part
}

// validToken reports whether s can stand as one subject token.
func validToken(s string) bool {
	return s != "" && !strings.ContainsAny(s, ". \t\r\n*>")
}

func validSubject(s string, wildcards bool) bool {
	if s == "" {
		return false
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		if t == "" || strings.ContainsAny(t, " \t\r\n") {
			return false
		}
		if t == "*" || (t == ">" && i == len(toks)-1) {
			if !wildcards {
				return false
			}
			continue
		}
		if strings.ContainsAny(t, "*>") {
			return false
		}
	}
	return true
}

func validName(s string) bool {
	return s != "" && len(s) <= 255 && !strings.ContainsAny(s, ". \t\r\n*>/\\")
}

// subjectMatches reports whether literal subject matches filter (which may
// hold wildcards).
func subjectMatches(filter, subject string) bool {
	ft := strings.Split(filter, ".")
	st := strings.Split(subject, ".")
	for i, f := range ft {
		if f == ">" {
			return len(st) > i
		}
		if i >= len(st) {
			return false
		}
		if f != "*" && f != st[i] {
			return false
		}
	}
	return len(ft) == len(st)
}
