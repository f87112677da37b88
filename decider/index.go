package decider

// The fold's per-member index: for each member, a doubly linked list of the
// partitions it owns and one of the partitions moving to it, threaded
// through arrays parallel to Owners. Links and heads hold index+1 so that
// zero means "none" and a zero Member has empty lists. Every change of an
// ownership goes through own, complete, disown and retarget, which keep the
// counts and the lists; reindex rebuilds both from Owners (after a restore
// or a re-declaration). CheckInvariants verifies them.

type links struct{ next, prev []int32 }

func (l *links) clone() links {
	return links{next: append([]int32(nil), l.next...), prev: append([]int32(nil), l.prev...)}
}

func (l *links) reset(n int) {
	l.next = append(l.next[:0], make([]int32, n)...)
	l.prev = append(l.prev[:0], make([]int32, n)...)
}

func (l *links) push(head *int32, p uint32) {
	l.prev[p] = 0
	l.next[p] = *head
	if *head != 0 {
		l.prev[*head-1] = int32(p) + 1
	}
	*head = int32(p) + 1
}

func (l *links) unlink(head *int32, p uint32) {
	n, pr := l.next[p], l.prev[p]
	if pr != 0 {
		l.next[pr-1] = n
	} else {
		*head = n
	}
	if n != 0 {
		l.prev[n-1] = pr
	}
	l.next[p], l.prev[p] = 0, 0
}

// each calls f for every partition in the list at head; f may unlink the
// partition it is given.
func (l *links) each(head int32, f func(p uint32)) {
	for q := head; q != 0; {
		p := uint32(q - 1)
		q = l.next[p]
		f(p)
	}
}

// reindex derives every member's counts and lists from Owners.
func (s *State) reindex() {
	//parti:unordered resets every member
	for _, m := range s.Members {
		m.owns, m.targets, m.ownHead, m.tgtHead = 0, 0, 0, 0
	}
	s.ownL.reset(len(s.Owners))
	s.tgtL.reset(len(s.Owners))
	for i := len(s.Owners) - 1; i >= 0; i-- {
		o := &s.Owners[i]
		if m := s.Members[o.Owner]; o.Owner != "" && m != nil {
			m.owns++
			s.ownL.push(&m.ownHead, uint32(i))
		}
		if t := s.Members[o.Target]; o.Target != "" && t != nil {
			t.targets++
			s.tgtL.push(&t.tgtHead, uint32(i))
		}
	}
}

// own gives the unowned partition p to m at seq.
func (s *State) own(p uint32, m *Member, seq uint64) {
	o := &s.Owners[p]
	o.Owner, o.Inc, o.Token = m.ID, m.Incarnation, seq
	m.owns++
	s.ownL.push(&m.ownHead, p)
}

// complete lands p's move in flight at seq: its target owns it. owner is
// p's owner.
func (s *State) complete(p uint32, seq uint64, owner *Member) {
	o := &s.Owners[p]
	owner.owns--
	s.ownL.unlink(&owner.ownHead, p)
	t := s.Members[o.Target]
	t.targets--
	s.tgtL.unlink(&t.tgtHead, p)
	o.Owner, o.Inc, o.Token = o.Target, o.TargetInc, seq
	o.Target, o.TargetInc = "", 0
	t.owns++
	s.ownL.push(&t.ownHead, p)
}

// disown leaves p without owner and without a move in flight. owner is p's
// owner.
func (s *State) disown(p uint32, owner *Member) {
	owner.owns--
	s.ownL.unlink(&owner.ownHead, p)
	s.retarget(p, nil)
	s.Owners[p] = Ownership{}
}

// retarget sets p's move in flight to t, or cancels it (t nil).
func (s *State) retarget(p uint32, t *Member) {
	o := &s.Owners[p]
	if o.Target != "" {
		old := s.Members[o.Target]
		old.targets--
		s.tgtL.unlink(&old.tgtHead, p)
		o.Target, o.TargetInc = "", 0
	}
	if t != nil {
		o.Target, o.TargetInc = t.ID, t.Incarnation
		t.targets++
		s.tgtL.push(&t.tgtHead, p)
	}
}
