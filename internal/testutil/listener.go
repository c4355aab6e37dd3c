package testutil

import (
	"net"
	"sync"
)

// TrackingListener remembers the connections it accepted, so that a test can cut them all, WebSockets
// included (httptest forgets hijacked connections).
type TrackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *TrackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// CloseAll closes every connection accepted so far.
func (l *TrackingListener) CloseAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}
