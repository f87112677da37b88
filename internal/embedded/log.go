package embedded

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
)

// Logger returns a nats-server logger that writes the server's warnings
// and errors to w, one line each, and drops its notices, debug and trace
// lines. A full disk, a stream that refuses writes, a lost route: an
// operator of the demo or the fleet example must see those, and nothing
// else of the server's chatter.
func Logger(w io.Writer) server.Logger { return &warnLogger{w: w} }

type warnLogger struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *warnLogger) line(level, format string, v ...any) {
	msg := strings.TrimRight(fmt.Sprintf(format, v...), "\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "nats-server: [%s] %s\n", level, msg)
}

// Noticef passes on the notices that a client was cut off or stalled for
// reading too slowly: nats-server reports them as notices, and they explain
// a client's broken connection.
func (l *warnLogger) Noticef(format string, v ...any) {
	if strings.Contains(format, "Slow Consumer") {
		l.line("INF", format, v...)
	}
}
func (l *warnLogger) Debugf(string, ...any)          {}
func (l *warnLogger) Tracef(string, ...any)          {}
func (l *warnLogger) Warnf(format string, v ...any)  { l.line("WRN", format, v...) }
func (l *warnLogger) Errorf(format string, v ...any) { l.line("ERR", format, v...) }
func (l *warnLogger) Fatalf(format string, v ...any) { l.line("FTL", format, v...) }

// logTo is where Start's servers log their warnings and errors.
var logTo io.Writer = os.Stderr
