package liveness_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/parti-io/parti/liveness"
)

// A judge whose own heartbeats fail through a 10-second outage does not
// expire its victim when the stream comes back: the outage restarts the
// count. A count from the victim's last sighting alone would expire it.
func ExampleJudge() {
	t := liveness.Production() // expiry 6s, MaxGap 2s + 1s
	judge, err := liveness.NewJudge(t.JudgeConfig())
	if err != nil {
		panic(err)
	}
	sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

	judge.Watch("worker-2", 1, 0)
	judge.OwnAck(sec(0), sec(0.01))
	judge.ObserveVictim(41, sec(1)) // the victim's heartbeat, stream sequence 41
	judge.OwnAck(sec(2), sec(2.01))
	for _, at := range []float64{4, 6, 8, 10, 12} { // the outage
		judge.OwnFailure(sec(at))
	}
	judge.OwnAck(sec(14), sec(14.01)) // back: a new gap-free run starts
	due, span, _ := judge.Due(sec(14.5))
	fmt.Println("after the outage:", due, span)

	for at := 16.0; at <= 20; at += 2 { // the victim stays silent
		judge.OwnAck(sec(at), sec(at+0.01))
	}
	due, span, fence := judge.Due(sec(20.5))
	fmt.Println("one expiry later:", due, span, "fence", fence)
	// Output:
	// after the outage: false 490ms
	// one expiry later: true 6.49s fence 41
}

// What a member does after a heartbeat was refused (10071), reported a
// proposal in flight (10164) or timed out: read the subject's last message.
func ExampleHeartbeater_Resolve() {
	hb := liveness.NewHeartbeater("n-7f3a")
	hb.Acked(12)
	fmt.Println("fence on", hb.Prev())

	// The ack of the next heartbeat was lost, but it landed.
	out := hb.Resolve(liveness.LastMessage{Seq: 15, Nonce: "n-7f3a"})
	fmt.Println(out, "stop:", out.Stop(), "fence on", hb.Prev())

	// After a long outage every heartbeat's TTL ran out.
	out = hb.Resolve(liveness.LastMessage{Empty: true})
	fmt.Println(out, "stop:", out.Stop(), "fence on", hb.Prev())

	// A judge expired us.
	out = hb.Resolve(liveness.LastMessage{Seq: 16, IsVerdict: true})
	fmt.Println(out, "stop:", out.Stop())
	// Output:
	// fence on 12
	// adopt(15) stop: false fence on 15
	// fence-zero stop: false fence on 0
	// expired(16) stop: true
}

// A lease is timed from when each acknowledged heartbeat was sent.
func ExampleLease() {
	lease := liveness.NewLease(4 * time.Second)
	lease.Acked(10 * time.Second) // heartbeat sent at 10s, acked later
	fmt.Println(lease.Valid(13*time.Second), lease.Deadline(), lease.Valid(14*time.Second))
	// Output: true 14s false
}

func ExampleTimings_Validate() {
	t := liveness.Production()
	t.Lease = 5 * time.Second
	err := t.Validate()
	fmt.Println(errors.Is(err, liveness.ErrInvalidTimings))
	fmt.Println(err)
	var te *liveness.TimingsError
	if errors.As(err, &te) {
		fmt.Println(te.Field, te.Rule == liveness.TimingsLeaseBelowExpiry)
	}
	// Output:
	// true
	// liveness: Lease (5s) must be < Expiry − Margin (4s)
	// Lease true
}

// A member stops heartbeating when its fold has not applied, within the
// expiry, a log sequence it knows exists.
func ExampleCatchUp() {
	var lag liveness.CatchUp
	expiry := 6 * time.Second
	lag.Learned(100, 1*time.Second) // e.g. from the tail's pending count
	fmt.Println(lag.MayHeartbeat(5*time.Second, expiry))
	fmt.Println(lag.MayHeartbeat(7*time.Second, expiry)) // stuck: let the judge expire us
	lag.Applied(100)
	fmt.Println(lag.MayHeartbeat(7*time.Second, expiry))
	// Output:
	// true
	// false
	// true
}

// A refused heartbeat resolves on the subject's last message: junk (here, an
// old verdict against another incarnation copied onto the subject) is
// adopted as the fence, and only a verdict naming this incarnation ends it.
func ExampleHeartbeater_Bind() {
	h := liveness.NewHeartbeater("nonce-a")
	h.Bind("worker-3", 2)
	h.Acked(10)
	out := h.Resolve(liveness.LastMessage{Seq: 11, IsVerdict: true, VerdictMember: "worker-3", VerdictIncarnation: 1})
	fmt.Println(out, out.Junk, h.Prev())
	out = h.Resolve(liveness.LastMessage{Seq: 12, IsVerdict: true, VerdictMember: "worker-3", VerdictIncarnation: 2})
	fmt.Println(out, h.Stopped())
	// Output:
	// adopt(11) true 11
	// expired(12) true
}
