// Package counting owns the byte counters both roles put on the bodies they move: a ReadCloser that adds
// what is read through it to a counter.
package counting

import (
	"io"
	"sync/atomic"
)

// ReadCloser adds the bytes read through it to N.
type ReadCloser struct {
	io.ReadCloser
	N *atomic.Int64
}

func (r ReadCloser) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.N.Add(int64(n))
	return n, err
}

// NewReadCloser counts what is read through rc into n.
func NewReadCloser(rc io.ReadCloser, n *atomic.Int64) ReadCloser {
	return ReadCloser{ReadCloser: rc, N: n}
}
