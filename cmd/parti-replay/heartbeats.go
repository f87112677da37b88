package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/replay"
)

// hbReport is what state adds on a live stream: each member's last
// heartbeat as the stream holds it, and the group's newest. The log alone
// cannot tell a group whose stream stopped accepting writes from a healthy
// one: heartbeats can.
type hbReport struct {
	Expiry  string     `json:"expiry"`
	Now     time.Time  `json:"now"`
	Members []hbMember `json:"members"`
	// Newest is the group's newest heartbeat (zero: none); Silent is set
	// when it is older than the expiry.
	Newest    time.Time `json:"newest,omitempty"`
	NewestAge string    `json:"newest_age,omitempty"`
	Silent    bool      `json:"silent"`
}

type hbMember struct {
	Member string    `json:"member"`
	Seq    uint64    `json:"seq,omitempty"`
	Time   time.Time `json:"time,omitempty"`
	Age    string    `json:"age,omitempty"`
	// Stale: the last heartbeat is older than the expiry (or there is
	// none): the member has stopped, or cannot write.
	Stale bool `json:"stale"`
}

// heartbeatAges reads the last heartbeat of every live member of s.
func heartbeatAges(ctx context.Context, js jetstream.JetStream, subj events.Subjects, s *decider.State, now time.Time, expiry time.Duration) (*hbReport, error) {
	st, err := js.Stream(ctx, replay.StreamName(subj.Group))
	if err != nil {
		return nil, err
	}
	rep := &hbReport{Expiry: expiry.String(), Now: now.UTC(), Members: []hbMember{}}
	last := func(subject string) (*jetstream.RawStreamMsg, error) {
		m, err := st.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, nil
		}
		return m, err
	}
	ids := slices.Clone(s.Order)
	slices.Sort(ids)
	for _, id := range ids {
		m := s.Members[id]
		if !m.Live() {
			continue
		}
		hm := hbMember{Member: replay.MemberRef(m.ID, m.Incarnation), Stale: true}
		msg, err := last(subj.Heartbeat(m.ID, m.Incarnation))
		if err != nil {
			return nil, err
		}
		if msg != nil {
			age := now.Sub(msg.Time)
			hm.Seq, hm.Time, hm.Age, hm.Stale = msg.Sequence, msg.Time.UTC(), age.Round(time.Millisecond).String(), age > expiry
		}
		rep.Members = append(rep.Members, hm)
	}
	msg, err := last(subj.Heartbeats())
	if err != nil {
		return nil, err
	}
	if msg != nil {
		age := now.Sub(msg.Time)
		rep.Newest, rep.NewestAge, rep.Silent = msg.Time.UTC(), age.Round(time.Millisecond).String(), age > expiry
	} else {
		rep.Silent = len(rep.Members) > 0
	}
	return rep, nil
}

func (h *hbReport) writeText(w io.Writer) {
	fmt.Fprintf(w, "heartbeats (expiry %s, now %s):\n", h.Expiry, h.Now.Format(replay.TimeFormat))
	for _, m := range h.Members {
		switch {
		case m.Seq == 0:
			fmt.Fprintf(w, "  %s  none in the stream  STALE\n", m.Member)
		case m.Stale:
			fmt.Fprintf(w, "  %s  seq %d at %s, %s ago  STALE: older than the expiry\n", m.Member, m.Seq, m.Time.Format(replay.TimeFormat), m.Age)
		default:
			fmt.Fprintf(w, "  %s  seq %d at %s, %s ago\n", m.Member, m.Seq, m.Time.Format(replay.TimeFormat), m.Age)
		}
	}
	if h.Silent {
		if h.Newest.IsZero() {
			fmt.Fprintf(w, "no heartbeat in the stream: is the stream accepting writes?\n")
		} else {
			fmt.Fprintf(w, "no heartbeat has landed for %s, longer than the expiry: is the stream accepting writes?\n", h.NewestAge)
		}
	}
}
