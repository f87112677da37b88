package main

// The embedded-store mode lives in the command, not in the replay library,
// so that a program importing replay does not link nats-server.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/parti-io/parti/replay"
)

// errNotAStore is wrapped by startEmbedded's error when the directory does
// not hold a nats-server store.
var errNotAStore = errors.New("not a nats-server store directory")

// startEmbedded reads a stopped server's store without touching it: it
// copies the store directory dir (the directory given to nats-server as its
// JetStream store_dir, which holds a "jetstream" directory; the "jetstream"
// directory itself is accepted too) to a temporary directory, starts an
// embedded JetStream server on the copy, with no network listener, and
// connects to it in process. Close shuts the server down and removes the
// copy. The original is only ever opened for reading.
//
// Copy a store only while its server is stopped, or the copy may be torn.
// A store of a clustered (replicated) stream cannot be started standalone.
// timeout bounds the reads' waits as ConnectOptions.Timeout does.
func startEmbedded(ctx context.Context, dir string, timeout time.Duration) (*replay.Conn, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("replay: embedded store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("replay: embedded store: %s is not a directory", dir)
	}
	src, sub := dir, "jetstream"
	if _, err := os.Stat(filepath.Join(dir, "jetstream")); err == nil {
		src, sub = filepath.Join(dir, "jetstream"), "jetstream"
	} else if filepath.Base(filepath.Clean(dir)) != "jetstream" {
		return nil, fmt.Errorf("replay: embedded store: %s: %w (no jetstream directory in it)", dir, errNotAStore)
	}
	tmp, err := os.MkdirTemp("", "parti-replay-store-")
	if err != nil {
		return nil, fmt.Errorf("replay: embedded store: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(tmp) }
	if err := copyTree(ctx, src, filepath.Join(tmp, sub)); err != nil {
		cleanup()
		return nil, fmt.Errorf("replay: embedded store: copy %s: %w", dir, err)
	}
	opts := &server.Options{
		ServerName: "parti-replay",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		DontListen: true,
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   tmp,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("replay: embedded server: %w", err)
	}
	go s.Start()
	stop := func() {
		s.Shutdown()
		s.WaitForShutdown()
		cleanup()
	}
	// Recovering a large store takes a while.
	if !s.ReadyForConnections(2 * time.Minute) {
		stop()
		return nil, fmt.Errorf("replay: embedded server on a copy of %s did not start", dir)
	}
	nc, err := nats.Connect("", nats.InProcessServer(s), nats.Name("parti-replay"))
	if err != nil {
		stop()
		return nil, fmt.Errorf("replay: embedded server: %w", err)
	}
	return replay.NewConn(nc, "embedded server on a copy of "+dir, timeout, stop)
}

// copyTree copies the regular files and directories under src to dst,
// opening the originals read-only.
func copyTree(ctx context.Context, src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o700)
		case d.Type().IsRegular():
			return copyFile(path, target)
		}
		return nil // sockets, symlinks and the like are not part of a store
	})
}

func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return nil
}
