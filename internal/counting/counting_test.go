package counting

import (
	"io"
	"strings"
	"sync/atomic"
	"testing"
)

func TestReadCloserCounts(t *testing.T) {
	var n atomic.Int64
	r := ReadCloser{io.NopCloser(strings.NewReader("hello, world")), &n}
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "hello, world" || n.Load() != 12 {
		t.Fatalf("read %q, %v; counted %d, want 12", b, err, n.Load())
	}
}
