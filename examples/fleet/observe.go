package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/partiprom"
)

// observer is a worker's metrics registry and, with --http, the server of
// its /metrics, /livez and /readyz.
type observer struct {
	reg  *prometheus.Registry
	prom *partiprom.Collectors
	srv  *http.Server
}

func newObserver() (*observer, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	prom, err := partiprom.New(reg)
	if err != nil {
		return nil, err
	}
	return &observer{reg: reg, prom: prom}, nil
}

// serve serves the probes of m and the registry on addr ("" serves
// nothing) and prints where.
func (o *observer) serve(addr string, m parti.HealthChecker, stdout, stderr io.Writer) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--http: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{}))
	health := parti.HealthHandler(m)
	mux.Handle("/livez", health)
	mux.Handle("/readyz", health)
	o.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := o.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(stderr, "fleet: http:", err)
		}
	}()
	fmt.Fprintf(stdout, "serving /metrics, /livez and /readyz at http://%s\n", ln.Addr())
	return nil
}

func (o *observer) close() {
	if o.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = o.srv.Shutdown(ctx)
}
