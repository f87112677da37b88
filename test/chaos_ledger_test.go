package test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/consumer"
	"github.com/parti-io/parti/internal/clock"
	"github.com/parti-io/parti/internal/testhooks"
)

// chaosProducer publishes sequence-numbered messages (1, 2, … per
// partition) round after round until halted; a message counts once its
// publish is acknowledged, and a failed one is published again with the
// same number (and message ID), so every partition's numbers are
// contiguous.
type chaosProducer struct {
	js      jetstream.JetStream
	parts   []string
	every   time.Duration
	mu      sync.Mutex
	sent    map[string]int
	total   atomic.Int64
	retries atomic.Int64
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func (p *chaosProducer) run() {
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		case <-time.After(p.every):
		}
		for _, part := range p.parts {
			p.mu.Lock()
			seq := p.sent[part] + 1
			p.mu.Unlock()
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				_, err := p.js.Publish(ctx, "events."+part, []byte(strconv.Itoa(seq)), jetstream.WithMsgID(part+"/"+strconv.Itoa(seq)))
				cancel()
				if err == nil {
					break
				}
				p.retries.Add(1)
				select {
				case <-p.stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
			p.mu.Lock()
			p.sent[part] = seq
			p.mu.Unlock()
			p.total.Add(1)
		}
	}
}

func (p *chaosProducer) halt() {
	p.once.Do(func() { close(p.stop) })
	<-p.done
}

func (p *chaosProducer) sentCopy() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.sent))
	for k, v := range p.sent {
		out[k] = v
	}
	return out
}

// msgRec is one handling of a message: which member incarnation handled
// which message of which partition under which token, when.
type msgRec struct {
	part       string
	seq        int
	streamSeq  uint64 // the message's sequence in the user's stream
	who        string // member ID#generation
	inc        uint64
	token      string
	start, end time.Duration
}

// ledger records every handled message and checks, as it happens, that no
// two handlers of one partition run at once.
type ledger struct {
	clk  clock.Clock
	mu   sync.Mutex
	recs []msgRec
	busy map[string]string        // partition → the handler running on it
	seen map[string]map[int]bool  // partition → message numbers handled
	last map[string]time.Duration // partition → start of its latest handling
	viol []string
	// lapsed counts handlings that started while the member's Owns said
	// no (maxLate: the furthest past its lease deadline); cancelled those
	// that started with the handler's context already ended.
	lapsed, cancelled int
	maxLate           time.Duration
	lapses            []msgRec // end holds how far past the lease deadline it started
}

func newLedger(clk clock.Clock) *ledger {
	return &ledger{clk: clk, busy: map[string]string{}, seen: map[string]map[int]bool{}, last: map[string]time.Duration{}}
}

func (l *ledger) handler(who string, member func() *parti.Member) consumer.Handler {
	return func(ctx context.Context, m *consumer.Msg) error {
		seq, err := strconv.Atoi(string(m.Data))
		if err != nil {
			l.mu.Lock()
			l.viol = append(l.viol, fmt.Sprintf("partition %s: a body that is no message number: %q", m.Partition, m.Data))
			l.mu.Unlock()
			return fmt.Errorf("%w: bad body %q", consumer.ErrPermanent, m.Data)
		}
		me := fmt.Sprintf("%s/%s#%d", who, m.Token, seq)
		start := l.clk.Now()
		owns, late, stopped := true, time.Duration(0), error(nil)
		if mem := member(); mem != nil {
			if owns = mem.Owns(m.Partition, m.Token); !owns {
				late = start - testhooks.LeaseDeadline(mem)
			}
			stopped = mem.Err()
		}
		cancelled := ctx.Err() != nil
		l.mu.Lock()
		if other := l.busy[m.Partition]; other != "" {
			l.viol = append(l.viol, fmt.Sprintf("partition %s: %s started (its member owns it: %v, context ended: %v, member stopped: %v) while %s was running",
				m.Partition, me, owns, cancelled, stopped, other))
		}
		l.busy[m.Partition] = me
		l.mu.Unlock()
		// Some work, so that hand-offs and faults meet messages in flight.
		time.Sleep(2 * time.Millisecond)
		end := l.clk.Now()
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.busy[m.Partition] == me {
			delete(l.busy, m.Partition)
		}
		if !owns {
			l.lapsed++
			l.maxLate = max(l.maxLate, late)
			l.lapses = append(l.lapses, msgRec{part: m.Partition, seq: seq, who: who, token: m.Token.String(), start: start, end: start + late})
		}
		if cancelled {
			l.cancelled++
		}
		l.recs = append(l.recs, msgRec{part: m.Partition, seq: seq, streamSeq: m.Seq,
			who: who, inc: m.Token.Incarnation, token: m.Token.String(), start: start, end: end})
		if l.seen[m.Partition] == nil {
			l.seen[m.Partition] = map[int]bool{}
		}
		l.seen[m.Partition][seq] = true
		l.last[m.Partition] = max(l.last[m.Partition], start)
		return nil
	}
}

// violations returns (and forgets) what the handlers saw go wrong.
func (l *ledger) violations() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := l.viol
	l.viol = nil
	return v
}

// covers reports whether every message of sent was handled.
func (l *ledger) covers(sent map[string]int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for part, n := range sent {
		for seq := n; seq >= 1; seq-- {
			if !l.seen[part][seq] {
				return false
			}
		}
	}
	return true
}

// allSince reports whether every partition started handling a message at
// or after t.
func (l *ledger) allSince(parts []string, t time.Duration) bool {
	return len(l.idleSince(parts, t)) == 0
}

func (l *ledger) idleSince(parts []string, t time.Duration) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, p := range parts {
		if l.last[p] < t {
			out = append(out, p)
		}
	}
	return out
}

func (l *ledger) handledAfter(t time.Duration) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.start >= t {
			n++
		}
	}
	return n
}

type ledgerStats struct {
	handled, distinct, dups, producerDups, lapsed, cancelled int
	maxRun                                                   int // most messages of one partition handled again in a row
	maxLate                                                  time.Duration
	dupsBy                                                   map[string]int
	lapsedBy                                                 map[string]int // by the fault in progress ("-": none)
}

// check asserts, per partition: every message was handled; each handler
// tenure (member incarnation and token) handled messages in order, one
// after the other; nothing was skipped (a handling is of the next message
// never handled yet, or of one handled before); and a message handled
// before is handled again only if its previous handling was by a member
// under a hard fault (crash, cut, reset, lost server, a helper that stopped
// itself), no earlier than ackSpan before that fault began and no later
// than the end of the settle that followed it. A message the producer
// published twice (a publish retried after a lost acknowledgement: two
// stream sequences) is counted, not held against the helper.
func (l *ledger) check(t *testing.T, sent map[string]int, faults []faultWin, ackSpan time.Duration) ledgerStats {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := ledgerStats{handled: len(l.recs), lapsed: l.lapsed, cancelled: l.cancelled, maxLate: l.maxLate, dupsBy: map[string]int{}, lapsedBy: map[string]int{}}
	for _, r := range l.lapses {
		k := "-"
		for _, w := range faults {
			if r.start >= w.start && r.start <= w.end {
				switch {
				case w.who == r.who:
					k = w.kind + "(own)"
				case w.who == "":
					k = w.kind
				default:
					k = w.kind + "(other)"
				}
			}
		}
		st.lapsedBy[k]++
	}
	byPart := map[string][]msgRec{}
	for _, r := range l.recs {
		byPart[r.part] = append(byPart[r.part], r)
	}
	errs := 0
	errorf := func(format string, args ...any) {
		if errs++; errs <= 20 {
			t.Errorf(format, args...)
		}
	}
	hard := func(r msgRec) string {
		for _, w := range faults {
			if hardFaults[w.kind] && (w.who == "" || w.who == r.who) && r.end+ackSpan >= w.start && r.end <= w.end {
				return w.kind
			}
		}
		return ""
	}
	parts := make([]string, 0, len(sent))
	for part := range sent {
		parts = append(parts, part)
	}
	slices.Sort(parts)
	for _, part := range parts {
		n := sent[part]
		for seq := 1; seq <= n; seq++ {
			if !l.seen[part][seq] {
				errorf("partition %s: message %d was never handled", part, seq)
			}
		}
		st.distinct += len(l.seen[part])
		recs := byPart[part]
		slices.SortStableFunc(recs, func(a, b msgRec) int { return int(a.start - b.start) })
		maxSeen, run := 0, 0
		lastOf := map[int]msgRec{}    // message → its latest handling
		tenure := map[string]msgRec{} // tenure → its latest handling
		for i, r := range recs {
			if i > 0 && recs[i-1].end > r.start {
				errorf("partition %s: %s handled %d while %s was still handling %d", part, r.who, r.seq, recs[i-1].who, recs[i-1].seq)
			}
			key := r.who + "@" + r.token
			if prev, ok := tenure[key]; ok && r.seq != prev.seq+1 && (r.seq != prev.seq || r.streamSeq == prev.streamSeq) {
				errorf("partition %s: %s (token %s) handled message %d right after message %d: order broken within one tenure",
					part, r.who, r.token, r.seq, prev.seq)
			}
			tenure[key] = r
			switch {
			case r.seq == maxSeen+1:
				maxSeen, run = r.seq, 0
			case r.seq > maxSeen+1:
				errorf("partition %s: %s (token %s) handled message %d while %d was the highest handled: messages skipped",
					part, r.who, r.token, r.seq, maxSeen)
				maxSeen, run = r.seq, 0
			default:
				p := lastOf[r.seq]
				if r.streamSeq != p.streamSeq {
					st.producerDups++
					break
				}
				st.dups++
				run++
				st.maxRun = max(st.maxRun, run)
				if k := hard(p); k != "" {
					st.dupsBy[k]++
				} else {
					errorf("partition %s: message %d (stream seq %d) handled again by %s (token %s) after %s (token %s) handled it, with no hard fault of %s around",
						part, r.seq, r.streamSeq, r.who, r.token, p.who, p.token, p.who)
				}
			}
			lastOf[r.seq] = r
		}
	}
	if errs > 20 {
		t.Errorf("... and %d more ledger violations", errs-20)
	}
	return st
}
