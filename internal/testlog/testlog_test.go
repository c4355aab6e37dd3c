package testlog

import (
	"log/slog"
	"sync"
	"testing"
)

func TestBufferCollectsConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("x"))
			}
		})
	}
	wg.Wait()
	if n := len(b.String()); n != 800 {
		t.Fatalf("buffer holds %d bytes, want 800", n)
	}
}

func TestLevel(t *testing.T) {
	t.Setenv("TESTLOG_DEBUG", "")
	if got := Level("TESTLOG_DEBUG", slog.LevelInfo); got != slog.LevelInfo {
		t.Errorf("unset: %v", got)
	}
	t.Setenv("TESTLOG_DEBUG", "1")
	if got := Level("TESTLOG_DEBUG", slog.LevelInfo); got != slog.LevelDebug {
		t.Errorf("set: %v", got)
	}
}
