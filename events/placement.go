package events

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Placement: member labels and capacity (carried by MemberClaimed) and
// partition constraint classes (carried by PartitionsDeclared). Only the
// "placement" strategy reads them; the other strategies ignore them.

// Bounds of the placement fields.
const (
	// MaxLabels bounds the labels of one member and of one class's Require
	// or Prefer.
	MaxLabels = 16
	// MaxLabelKeyLen and MaxLabelValueLen bound a label's key and value.
	MaxLabelKeyLen   = 63
	MaxLabelValueLen = 63
	// MaxCapacity bounds a member's capacity (strategy.MaxCapacity).
	MaxCapacity = 1 << 16
	// MaxClasses bounds the constraint classes of one declaration.
	MaxClasses = 1024
)

// ErrInvalidLabel is wrapped by the errors of [ValidLabel] and
// [ValidLabels].
var ErrInvalidLabel = errors.New("events: invalid label")

// Class is a partition constraint class: Require is the hard constraint (an
// owner carries every one of these labels), Prefer the soft affinity (prefer
// owners that also carry these, while any is live and balance allows).
type Class struct {
	Require []string `json:"require,omitempty"`
	Prefer  []string `json:"prefer,omitempty"`
}

// ValidLabel checks a "key=value" label: a key of 1 to MaxLabelKeyLen bytes
// and a value of 0 to MaxLabelValueLen bytes, both of [A-Za-z0-9_.-] (the
// key also '/'). The error wraps ErrInvalidLabel and quotes the label.
func ValidLabel(l string) error {
	k, v, ok := strings.Cut(l, "=")
	switch {
	case !ok:
		return fmt.Errorf("%w: %q is not key=value", ErrInvalidLabel, l)
	case k == "" || len(k) > MaxLabelKeyLen:
		return fmt.Errorf("%w: %q: key must be 1 to %d bytes", ErrInvalidLabel, l, MaxLabelKeyLen)
	case len(v) > MaxLabelValueLen:
		return fmt.Errorf("%w: %q: value must be at most %d bytes", ErrInvalidLabel, l, MaxLabelValueLen)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
		if !ok && !(c == '/' && i < len(k)) && i != len(k) {
			return fmt.Errorf("%w: %q has %q at %d (allowed: A-Z a-z 0-9 _ - . and / in the key)", ErrInvalidLabel, l, c, i)
		}
	}
	return nil
}

// ValidLabels checks a label list: at most MaxLabels labels, each valid,
// sorted ascending, no key twice. The error wraps ErrInvalidLabel.
func ValidLabels(labels []string) error {
	if len(labels) > MaxLabels {
		return fmt.Errorf("%w: %d labels, at most %d", ErrInvalidLabel, len(labels), MaxLabels)
	}
	for i, l := range labels {
		if err := ValidLabel(l); err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
		if i > 0 {
			pk, _, _ := strings.Cut(labels[i-1], "=")
			k, _, _ := strings.Cut(l, "=")
			if labels[i-1] >= l {
				return fmt.Errorf("%w: [%d] %q is not sorted after %q", ErrInvalidLabel, i, l, labels[i-1])
			}
			if pk == k {
				return fmt.Errorf("%w: key %q twice", ErrInvalidLabel, k)
			}
		}
	}
	return nil
}

// LabelsOf turns a key → value map into the sorted "key=value" list the
// claim carries. It does not validate.
func LabelsOf(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	//parti:unordered collects the pairs, sorted below
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// Validate checks a class: Require and Prefer each valid label lists.
func (c Class) Validate() error {
	if err := ValidLabels(c.Require); err != nil {
		return fmt.Errorf("require: %w", err)
	}
	if err := ValidLabels(c.Prefer); err != nil {
		return fmt.Errorf("prefer: %w", err)
	}
	return nil
}

// ValidPlacement checks a declaration's classes and class indices (classOf
// empty, or one index below len(classes) per partition of n).
func ValidPlacement(classes []Class, classOf []uint32, n int) error {
	if len(classes) > MaxClasses {
		return fmt.Errorf("%w: %d classes, at most %d", ErrInvalidLabel, len(classes), MaxClasses)
	}
	for i, c := range classes {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("class %d: %w", i, err)
		}
	}
	if len(classOf) == 0 {
		return nil
	}
	if len(classOf) != n {
		return fmt.Errorf("%w: %d class indices for %d partitions", ErrInvalidLabel, len(classOf), n)
	}
	for i, c := range classOf {
		if int(c) >= len(classes) {
			return fmt.Errorf("%w: partition %d has class %d of %d", ErrInvalidLabel, i, c, len(classes))
		}
	}
	return nil
}
