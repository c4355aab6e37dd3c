// Package testlog owns what tests log: a writer and a slog.Logger that send lines to the test's output while it
// runs (and drop what goroutines outliving it write, which the testing package would report as a panic), and
// a Buffer that collects a child process's output for the failure message.
package testlog

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// Writer logs each write to t (t.Log) until t ends, and discards afterwards.
func Writer(t testing.TB) io.Writer {
	w := &writer{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.ended = true
		w.mu.Unlock()
	})
	return w
}

type writer struct {
	t     testing.TB
	mu    sync.Mutex
	ended bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ended {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// New returns a logger that writes text lines at level and above to t's output while t runs.
func New(t testing.TB, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewTextHandler(Writer(t), &slog.HandlerOptions{Level: level}))
}

// Level is slog.LevelDebug when the environment variable env is set (to anything but ""), and def otherwise:
// the switch a package's tests offer for their servers' debug logs.
func Level(env string, def slog.Level) slog.Level {
	if os.Getenv(env) != "" {
		return slog.LevelDebug
	}
	return def
}

// Buffer collects what several goroutines write (exec's copying goroutines, log handlers), safely.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
