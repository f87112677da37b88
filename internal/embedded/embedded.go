// Package embedded starts an in-process nats-server with JetStream, for the
// demo, the end-to-end benchmark and the example fleet's server mode.
package embedded

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Start starts a JetStream server on host:port (port -1 picks a free one)
// storing under dir, and waits until it accepts connections.
func Start(host string, port int, dir string) (*server.Server, error) {
	opts := &server.Options{
		Host:      host,
		Port:      port,
		NoLog:     true,
		NoSigs:    true,
		JetStream: true,
		StoreDir:  dir,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded: server on %s:%d not ready after 15s", host, port)
	}
	return s, nil
}
