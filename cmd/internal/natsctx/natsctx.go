// Package natsctx connects the commands (parti-replay, parti-ctl) the way
// a nats CLI context says: it reads contexts with the library that owns
// their format, github.com/nats-io/jsm.go/natscontext, so that every
// setting that affects connecting is honoured (user and password, token,
// creds, nkey, user JWT, TLS, inbox prefix, SOCKS proxy, JetStream domain
// or API prefix). It lives under cmd/ so that the parti libraries never
// link what natscontext pulls in.
package natsctx

import (
	"fmt"

	"github.com/nats-io/jsm.go/natscontext"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/replay"
)

// Context is a loaded nats CLI context.
type Context struct {
	// Name is the context's name.
	Name string
	// URL is the context's server URLs (comma-separated; may be empty).
	URL string
	// Options are the connection options the context implies.
	Options []nats.Option
	// JSDomain and JSAPIPrefix select the JetStream API (at most one is
	// set).
	JSDomain, JSAPIPrefix string
}

// Load reads the context name from the nats CLI's context store
// ($XDG_CONFIG_HOME/nats/context/NAME.json, or ~/.config/nats/...).
func Load(name string) (*Context, error) {
	c, err := natscontext.New(name, true)
	if err != nil {
		return nil, fmt.Errorf("context %s: %w", name, err)
	}
	opts, err := c.NATSOptions()
	if err != nil {
		return nil, fmt.Errorf("context %s: %w", name, err)
	}
	out := &Context{Name: name, URL: c.ServerURL(), Options: opts, JSDomain: c.JSDomain(), JSAPIPrefix: c.JSAPIPrefix()}
	if out.JSDomain != "" && out.JSAPIPrefix != "" {
		return nil, fmt.Errorf("context %s: jetstream_domain and jetstream_api_prefix exclude each other", name)
	}
	return out, nil
}

// JetStream returns the JetStream context of nc the context selects.
func (c *Context) JetStream(nc *nats.Conn) (jetstream.JetStream, error) {
	switch {
	case c == nil:
		return jetstream.New(nc)
	case c.JSDomain != "":
		return jetstream.NewWithDomain(nc, c.JSDomain)
	case c.JSAPIPrefix != "":
		return jetstream.NewWithAPIPrefix(nc, c.JSAPIPrefix)
	}
	return jetstream.New(nc)
}

// Apply makes o connect as the context name says (no-op for ""): the
// context's server URLs unless o names servers, and its options and
// JetStream domain or API prefix. Explicit flags in o (creds, nkey, TLS
// files) still win. o.Context is cleared: the replay library's own reader
// of context files (url, creds, nkey and TLS files only) is not used.
func Apply(o *replay.ConnectOptions, name string) error {
	if name == "" {
		return nil
	}
	c, err := Load(name)
	if err != nil {
		return err
	}
	if o.Server == "" {
		o.Server = c.URL
	}
	o.Options = append(c.Options, o.Options...)
	o.JetStream = c.JetStream
	o.Context = ""
	return nil
}
