package embedded

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

func TestLoggerKeepsWarningsAndErrors(t *testing.T) {
	var buf bytes.Buffer
	l := Logger(&buf)
	l.Noticef("Server is ready")
	l.Debugf("debug %d", 1)
	l.Tracef("trace")
	l.Warnf("JetStream resource limits exceeded for server")
	l.Errorf("JetStream failed to store a msg on stream '%s > %s': %v", "$G", "PARTI_fleet", "no space left on device")
	got := buf.String()
	want := "nats-server: [WRN] JetStream resource limits exceeded for server\n" +
		"nats-server: [ERR] JetStream failed to store a msg on stream '$G > PARTI_fleet': no space left on device\n"
	if got != want {
		t.Fatalf("logged:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(got, "ready") {
		t.Fatal("a notice was logged")
	}
}

// TestStartLogsTheServersErrors starts a server and checks that an error it
// reports reaches the log.
func TestStartLogsTheServersErrors(t *testing.T) {
	var buf syncBuffer
	old := logTo
	logTo = &buf
	defer func() { logTo = old }()
	s, err := Start("127.0.0.1", -1, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	s.Errorf("a test error %d", 42)
	if !strings.Contains(buf.String(), "nats-server: [ERR] a test error 42") {
		t.Fatalf("the server's error was not logged: %q", buf.String())
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
