package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// proc is one worker process, driven over its stdin and stdout.
type proc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
	mu  sync.Mutex
	// killed: a command ran past its context and the worker was killed;
	// every later command fails at once.
	killed bool
}

// startProcs starts n workers: this binary again, with PARTI_SCALE_ROLE.
func startProcs(n int, urls, profile string, replicas int, stderr io.Writer, env ...string) ([]*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var ps []*proc
	for i := range n {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), roleEnv+"=worker",
			"PARTI_SCALE_URLS="+rotate(urls, i), "PARTI_SCALE_PROFILE="+profile,
			"PARTI_SCALE_REPLICAS="+strconv.Itoa(replicas))
		cmd.Env = append(cmd.Env, env...)
		cmd.Stderr = stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			stopProcs(ps)
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			stopProcs(ps)
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			stopProcs(ps)
			return nil, fmt.Errorf("start worker: %w", err)
		}
		ps = append(ps, &proc{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<16)})
	}
	return ps, nil
}

// rotate puts the i-th URL first, so the workers spread over the servers.
func rotate(urls string, i int) string {
	u := strings.Split(urls, ",")
	i %= len(u)
	return strings.Join(append(u[i:], u[:i]...), ",")
}

var errWorker = errors.New("worker")

// call sends one command and returns its "ok" line's fields. When ctx ends
// first the worker is killed (it would answer late, out of step).
func (p *proc) call(ctx context.Context, line string) ([]string, error) {
	lines, err := p.exchange(ctx, line, false)
	if err != nil {
		return nil, err
	}
	return strings.Fields(lines[0])[1:], nil
}

// dump returns the worker's "INDEX ID" lines for group.
func (p *proc) dump(ctx context.Context, group string, into []string) error {
	lines, err := p.exchange(ctx, "dump "+group, true)
	if err != nil {
		return err
	}
	for _, l := range lines {
		i, id, _ := strings.Cut(l, " ")
		n, err := strconv.Atoi(i)
		if err != nil || n < 0 || n >= len(into) {
			return fmt.Errorf("%w: bad dump line %q", errWorker, l)
		}
		into[n] = id
	}
	return nil
}

func (p *proc) exchange(ctx context.Context, line string, multi bool) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.killed {
		return nil, fmt.Errorf("%w: %q: the worker was killed after an earlier command ran past its deadline", errWorker, line)
	}
	type result struct {
		lines []string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		if _, err := io.WriteString(p.in, line+"\n"); err != nil {
			done <- result{err: fmt.Errorf("%w: write %q: %w", errWorker, line, err)}
			return
		}
		var lines []string
		for {
			l, err := p.out.ReadString('\n')
			if err != nil {
				done <- result{err: fmt.Errorf("%w: read reply to %q: %w", errWorker, line, err)}
				return
			}
			l = strings.TrimSuffix(l, "\n")
			if strings.HasPrefix(l, "err ") {
				done <- result{err: fmt.Errorf("%w: %s: %s", errWorker, strings.Fields(line)[0], l[4:])}
				return
			}
			if !multi {
				done <- result{lines: []string{l}}
				return
			}
			if l == "end" {
				done <- result{lines: lines}
				return
			}
			lines = append(lines, l)
		}
	}()
	select {
	case r := <-done:
		return r.lines, r.err
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		p.killed = true
		<-done // the read ends once the killed worker's stdout closes
		return nil, fmt.Errorf("%q: %w", line, context.Cause(ctx))
	}
}

// stopProcs asks every worker to quit (Stop every member) and kills the
// ones that do not exit within 30 s.
func stopProcs(ps []*proc) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, _ = p.call(ctx, "quit")
			_ = p.in.Close()
			exited := make(chan struct{})
			go func() { _ = p.cmd.Wait(); close(exited) }()
			select {
			case <-exited:
			case <-ctx.Done():
				_ = p.cmd.Process.Kill()
				<-exited
			}
		}()
	}
	wg.Wait()
}

// each runs fn on every worker at once and returns the first error.
func each(ps []*proc, fn func(i int, p *proc) error) error {
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn(i, p) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}
