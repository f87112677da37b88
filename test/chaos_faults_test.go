package test

import (
	"context"
	"time"

	"github.com/parti-io/parti/internal/faultproxy"
)

func (r *chaosRig) addFault(kind, who string) *faultWin {
	r.note("%s %s", kind, who)
	w := &faultWin{kind: kind, who: who, start: r.now()}
	r.mu.Lock()
	r.current = w
	r.faults = append(r.faults, w)
	r.counts[kind]++
	r.mu.Unlock()
	return w
}

func (r *chaosRig) faultWindows() []faultWin {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]faultWin, len(r.faults))
	for i, w := range r.faults {
		out[i] = *w
	}
	return out
}

// inject injects one fault of kind, heals it and waits for the group to
// settle.
func (r *chaosRig) inject(kind string) {
	r.t.Helper()
	ms := r.all()
	m := ms[r.rng.Intn(len(ms))]
	incs := r.incarnations()
	proxies := r.prox[m.id]
	setMode := func(mode faultproxy.Mode) {
		for _, p := range proxies {
			p.SetMode(mode)
		}
	}
	reset := func() {
		for _, p := range proxies {
			p.Reset()
		}
	}
	exp := r.env.timings.Expiry
	var w *faultWin
	switch kind {
	case "crash-restart":
		// The connection goes first (nothing more is acknowledged), then
		// the process; it restarts with the same ID.
		w = r.addFault(kind, m.name)
		delete(incs, m.name)
		m.nc.Close()
		m.c.Stop()
		r.drop(m.id)
		r.join(m.id)
	case "short-cut":
		w = r.addFault(kind, m.name)
		setMode(faultproxy.Blackhole)
		hold(r.rng, exp/3)
		setMode(faultproxy.Pass)
		reset()
	case "long-cut":
		// Longer than the expiry: it is expired and rejoins.
		w = r.addFault(kind, m.name)
		delete(incs, m.name)
		setMode(faultproxy.Blackhole)
		hold(r.rng, 3*exp)
		setMode(faultproxy.Pass)
		reset()
	case "delay":
		w = r.addFault(kind, m.name)
		d := time.Duration(10+r.rng.Intn(90)) * time.Millisecond
		for _, p := range proxies {
			p.SetDelay(d)
		}
		hold(r.rng, 2*time.Second)
		for _, p := range proxies {
			p.SetDelay(0)
		}
	case "reset":
		w = r.addFault(kind, m.name)
		reset()
	case "leave-rejoin":
		w = r.addFault(kind, m.name)
		delete(incs, m.name)
		lctx, cancel := context.WithTimeout(r.ctx, r.bound)
		err := m.c.Leave(lctx)
		cancel()
		if err != nil {
			r.fatalf("leave %s: %v", m.name, err)
		}
		m.nc.Close()
		r.drop(m.id)
		r.join(m.id)
	case "close-restart":
		w = r.addFault(kind, m.name)
		delete(incs, m.name)
		cctx, cancel := context.WithTimeout(r.ctx, r.bound)
		err := m.c.Close(cctx)
		cancel()
		if err != nil {
			r.fatalf("close %s: %v", m.name, err)
		}
		m.nc.Close()
		r.drop(m.id)
		r.join(m.id)
	default:
		w = r.addFault(kind, "")
		r.env.serverFault(r, kind)
	}
	r.mu.Lock()
	w.healed = r.now()
	r.mu.Unlock()
	r.note("%s healed", kind)
	r.settle(kind, r.now(), incs)
	r.note("%s settled", kind)
	r.mu.Lock()
	w.end = r.now()
	r.worst["reown:"+kind] = max(r.worst["reown:"+kind], w.end-w.start)
	r.current = nil
	r.mu.Unlock()
}
