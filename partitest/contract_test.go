package partitest_test

import (
	"testing"

	"github.com/parti-io/parti/internal/contracttest"
	"github.com/parti-io/parti/partitest"
)

// partitestDriver runs the contract cases on an in-memory group.
type partitestDriver struct {
	g       *partitest.Group
	r       *contracttest.Recorder
	members map[string]*partitest.Member
}

func (d *partitestDriver) Join(t *testing.T, id, name string) {
	d.members[id] = d.g.Join(id, d.r.Handler(name))
}
func (d *partitestDriver) Settle(*testing.T)             { d.g.Settle() }
func (d *partitestDriver) Leave(_ *testing.T, id string) { d.members[id].Leave() }
func (d *partitestDriver) Close(_ *testing.T, id string) { d.members[id].Close() }
func (d *partitestDriver) SetPartitions(_ *testing.T, id string, ids []string) {
	d.members[id].SetPartitions(ids, nil)
}

// The handler contract table (internal/contracttest), as parti.Member's
// integration test runs it.
func TestContractTable(t *testing.T) {
	contracttest.Run(t, func(t *testing.T, c contracttest.Case, r *contracttest.Recorder) contracttest.Driver {
		g := partitest.NewGroup(t, partitest.Options{Partitions: contracttest.Partitions(c.Partitions)})
		return &partitestDriver{g: g, r: r, members: map[string]*partitest.Member{}}
	})
}
