// Package embedded starts an in-process nats-server with JetStream, for the
// demo, the end-to-end benchmark and the example fleet's server mode.
package embedded

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Start starts a JetStream server on host:port (port -1 picks a free one)
// storing under dir, and waits until it accepts connections. The server
// logs its warnings and errors to standard error (see Logger).
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
	s.SetLoggerV2(Logger(logTo), false, false, false)
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded: server on %s:%d not ready after 15s", host, port)
	}
	return s, nil
}

// Local is an embedded server on a free loopback port with one client
// connection to it.
type Local struct {
	Server *server.Server
	Conn   *nats.Conn
	JS     jetstream.JetStream
}

// StartLocal starts a JetStream server storing under dir on a free loopback
// port and connects to it (reconnecting forever); jsOpts configure the
// JetStream context.
func StartLocal(dir string, jsOpts ...jetstream.JetStreamOpt) (*Local, error) {
	s, err := Start("127.0.0.1", -1, dir)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1))
	if err != nil {
		s.Shutdown()
		return nil, fmt.Errorf("embedded: connect: %w", err)
	}
	js, err := jetstream.New(nc, jsOpts...)
	if err != nil {
		nc.Close()
		s.Shutdown()
		return nil, fmt.Errorf("embedded: jetstream: %w", err)
	}
	return &Local{Server: s, Conn: nc, JS: js}, nil
}

// Close closes the connection and shuts the server down.
func (l *Local) Close() {
	l.Conn.Close()
	l.Server.Shutdown()
}
