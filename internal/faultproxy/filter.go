package faultproxy

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"time"
)

// SetDropPublish makes the proxy swallow every message a client publishes
// (PUB or HPUB) for which drop returns true, and forward everything else:
// a lost request, such as a JetStream pull request that never reaches the
// server while the connection stays healthy. drop runs on the proxy's
// goroutines, one call per published message; nil forwards everything.
func (p *Proxy) SetDropPublish(drop func(subject string) bool) {
	if drop == nil {
		p.SetDropMessage(nil)
		return
	}
	p.SetDropMessage(func(subject string, _ []byte) bool { return drop(subject) })
}

// SetDropMessage is SetDropPublish with the message's payload (for HPUB,
// its headers and body as sent) given to drop too, to tell requests to the
// same API subject apart.
func (p *Proxy) SetDropMessage(drop func(subject string, payload []byte) bool) {
	p.mu.Lock()
	p.drop = drop
	p.mu.Unlock()
}

// pipeClient copies a client's bytes to its server, reading them as NATS
// protocol operations so that SetDropPublish can remove whole messages.
// Delay and blackhole apply as in pipe.
func (p *Proxy) pipeClient(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	var pending []byte
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			pending = append(pending, buf[:n]...)
			p.mu.Lock()
			mode, delay, drop := p.mode, p.delay, p.drop
			p.mu.Unlock()
			if delay > 0 {
				select {
				case <-time.After(delay):
				case <-p.done:
					return
				}
			}
			var out []byte
			out, pending = filterOps(pending, drop)
			if mode == Pass && len(out) > 0 {
				if _, werr := dst.Write(out); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

// filterOps splits buf into complete protocol operations and returns the
// bytes to forward (every complete operation but the dropped publishes) and
// the incomplete tail to keep for the next read.
func filterOps(buf []byte, drop func(string, []byte) bool) (out, rest []byte) {
	if drop == nil {
		return buf, nil
	}
	for {
		eol := bytes.Index(buf, []byte("\r\n"))
		if eol < 0 {
			return out, buf
		}
		line := buf[:eol]
		fields := bytes.Fields(line)
		size := 0
		if len(fields) >= 3 {
			switch string(bytes.ToUpper(fields[0])) {
			case "PUB", "HPUB":
				n, err := strconv.Atoi(string(fields[len(fields)-1]))
				if err == nil {
					size = n + 2 // the payload and its CRLF
				}
			}
		}
		total := eol + 2 + size
		if len(buf) < total {
			return out, buf
		}
		if size == 0 || !drop(string(fields[1]), buf[eol+2:total-2]) {
			out = append(out, buf[:total]...)
		}
		buf = buf[total:]
	}
}
