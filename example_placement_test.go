package parti_test

import (
	"context"
	"log"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
)

// A member in zone eu-west-1a, twice the size of the others, in a group
// whose EU tenants must stay in the EU and whose tenant "acme" prefers zone
// eu-west-1a.
func ExampleConfig_placement() {
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	cfg := parti.Production("orders")
	cfg.Strategy = "placement"
	cfg.Labels = map[string]string{"zone": "eu-west-1a", "region": "eu"}
	cfg.Capacity = 2
	cfg.Partitions = []string{"acme", "globex", "initech", "umbrella"}
	cfg.Constraints = []parti.Constraint{
		{Prefer: map[string]string{"zone": "eu-west-1a"}},
		{Require: map[string]string{"region": "eu"}},
		{},
		{Require: map[string]string{"region": "eu"}},
	}
	m, err := parti.Join(context.Background(), js, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Leave(context.Background())
}
