package events_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/parti-io/parti/events"
)

func TestValidLabels(t *testing.T) {
	good := [][]string{nil, {"zone=a"}, {"region=eu", "zone=a"}, {"empty="}, {"topology.kubernetes.io/zone=eu-west-1a"}}
	for _, ls := range good {
		if err := events.ValidLabels(ls); err != nil {
			t.Errorf("ValidLabels(%q) = %v, want nil", ls, err)
		}
	}
	many := make([]string, events.MaxLabels+1)
	for i := range many {
		many[i] = "k" + strings.Repeat("x", i) + "=v"
	}
	bad := [][]string{
		{"zone"}, {"=a"}, {"zone=a b"}, {"zone=a/b"}, {"zone=a", "region=eu"}, {"zone=a", "zone=b"},
		{strings.Repeat("k", events.MaxLabelKeyLen+1) + "=v"}, {"k=" + strings.Repeat("v", events.MaxLabelValueLen+1)},
		many,
	}
	for _, ls := range bad {
		if err := events.ValidLabels(ls); !errors.Is(err, events.ErrInvalidLabel) {
			t.Errorf("ValidLabels(%q) = %v, want ErrInvalidLabel", ls, err)
		}
	}
	if got := events.LabelsOf(map[string]string{"zone": "a", "region": "eu"}); !cmp.Equal(got, []string{"region=eu", "zone=a"}) {
		t.Errorf("LabelsOf = %q", got)
	}
}

func TestValidPlacement(t *testing.T) {
	classes := []events.Class{{}, {Require: []string{"region=eu"}, Prefer: []string{"zone=a"}}}
	if err := events.ValidPlacement(classes, []uint32{0, 1, 1}, 3); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"index out of range": events.ValidPlacement(classes, []uint32{0, 2, 1}, 3),
		"length":             events.ValidPlacement(classes, []uint32{0, 1}, 3),
		"bad prefer":         events.ValidPlacement([]events.Class{{Prefer: []string{"zone"}}}, nil, 3),
		"too many classes":   events.ValidPlacement(make([]events.Class, events.MaxClasses+1), nil, 0),
	} {
		if !errors.Is(err, events.ErrInvalidLabel) {
			t.Errorf("%s: %v, want ErrInvalidLabel", name, err)
		}
	}
}

// TestPlacementFieldsRoundTrip: labels, capacity and classes survive
// encoding, and an envelope without them decodes to the zero values (the
// fields are additive).
func TestPlacementFieldsRoundTrip(t *testing.T) {
	for _, ev := range []events.Event{
		&events.MemberClaimed{ID: "w1", Nonce: "n", MaxProtocol: 1, Labels: []string{"region=eu", "zone=a"}, Capacity: 4},
		&events.PartitionsDeclared{Version: 2, IDs: []string{"p1", "p2"}, By: "w1", Strategy: "placement",
			Classes: []events.Class{{}, {Require: []string{"region=eu"}}}, ClassOf: []uint32{0, 1}},
		&events.MemberClaimed{ID: "w1", Nonce: "n", MaxProtocol: 1},
	} {
		got, _, err := events.Decode(events.MustEncode(events.MaxVersion, ev))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ev, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}
