package sim

import (
	"fmt"
	"testing"

	"github.com/parti-io/parti/internal/contracttest"
)

// scriptDriver runs the contract cases on a scripted, fault-free world: the
// simulator's application calls each process's Handler as it makes the
// calls rawmember.Driver hands it.
type scriptDriver struct {
	s *Script
	r *contracttest.Recorder
}

func (d *scriptDriver) Join(t *testing.T, id, name string) {
	t.Helper()
	if err := d.s.Join(id, d.r.Handler(name)); err != nil {
		t.Fatal(err)
	}
}

func (d *scriptDriver) Settle(t *testing.T) {
	t.Helper()
	if err := d.s.Settle(); err != nil {
		t.Fatal(err)
	}
}

func (d *scriptDriver) Leave(t *testing.T, id string) {
	t.Helper()
	if err := d.s.Leave(id); err != nil {
		t.Fatal(err)
	}
}

func (d *scriptDriver) Close(t *testing.T, id string) {
	t.Helper()
	if err := d.s.Close(id); err != nil {
		t.Fatal(err)
	}
}

func (d *scriptDriver) SetPartitions(t *testing.T, id string, ids []string) {
	t.Helper()
	if err := d.s.SetPartitions(id, ids); err != nil {
		t.Fatal(err)
	}
}

// contractSeeds are the seeds each case runs on: the network delays, tail
// lags, clock offsets and the application's finishing times differ (all 25
// take about 0.1 s; 200 passed once, in 0.5 s).
const contractSeeds = 25

// Issue 11: the simulator passes the handler contract table that
// parti.Member (test/contract_test.go) and partitest pass: the same calls,
// order and reasons, on a scripted world with no fault.
func TestContractTable(t *testing.T) {
	for seed := uint64(1); seed <= contractSeeds; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			contracttest.Run(t, func(t *testing.T, c contracttest.Case, r *contracttest.Recorder) contracttest.Driver {
				s, err := NewScript(DefaultOptions(seed), contracttest.Partitions(c.Partitions))
				if err != nil {
					t.Fatal(err)
				}
				return &scriptDriver{s: s, r: r}
			})
		})
	}
}
