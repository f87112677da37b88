package replaytest

import (
	"fmt"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// ClaimPlaced claims id with labels (sorted "key=value") and a capacity.
func (b *Builder) ClaimPlaced(id string, capacity uint32, labels ...string) {
	b.claims++
	nonce := fmt.Sprintf("n%04d-%s", b.claims, id)
	c, err := decider.Claim(id, nonce, 0)
	if err != nil {
		b.fail(err)
		return
	}
	c.Labels, c.Capacity = labels, capacity
	_, out := b.Log(c, false)
	b.must("claim "+id, out)
	if m := b.State.GrantedTo(nonce); m != nil {
		b.nonces[m.ID] = nonce
	}
}

// DeclarePlaced is Declare with constraint classes (classOf parallel to
// ids).
func (b *Builder) DeclarePlaced(ids []string, classes []events.Class, classOf []uint32, strategy string, perPart int) {
	l := b.leader()
	if b.err != nil {
		return
	}
	parts, err := decider.DeclarePlaced(b.State, l.ID, l.Incarnation, ids, nil, classes, classOf, strategy, perPart)
	if err != nil {
		b.fail(err)
		return
	}
	for i, p := range parts {
		_, out := b.Log(p, i == 0)
		b.must("declaration", out)
	}
}

// ZoneScenario writes a zoned group's life through b: six members, two in
// each of zones a, b and c (zone-a-1 with capacity 2), share 60 partitions
// "p-00" to "p-59" under the placement strategy: p-00 to p-09 prefer zone
// a, p-10 to p-14 require zone c, the rest go anywhere. Cold start, then
// zone-c-1 crashes (its partitions move within the constraints).
func ZoneScenario(b *Builder) {
	for _, m := range []struct {
		id, zone string
		capacity uint32
	}{{"zone-a-1", "a", 2}, {"zone-a-2", "a", 1}, {"zone-b-1", "b", 1}, {"zone-b-2", "b", 1}, {"zone-c-1", "c", 1}, {"zone-c-2", "c", 1}} {
		b.ClaimPlaced(m.id, m.capacity, "zone="+m.zone)
	}
	b.Heartbeats()
	b.SetProtocol(events.MaxVersion)
	ids := PartitionIDs(60)
	classOf := make([]uint32, len(ids))
	for i := range classOf {
		switch {
		case i < 10:
			classOf[i] = 1
		case i < 15:
			classOf[i] = 2
		}
	}
	classes := []events.Class{{}, {Prefer: []string{"zone=a"}}, {Require: []string{"zone=c"}}}
	b.DeclarePlaced(ids, classes, classOf, "placement", 0)
	b.CloseWindow(100)
	b.Decide()
	b.Heartbeats()

	b.advance(6 * time.Second)
	b.Crash("zone-c-1", 6100)
	b.Decide()
	b.Heartbeats()
}
