package seeder

import (
	"net"
	"sync"
)

// listener hands opened data channels to the BitTorrent engine, which Accepts them like TCP connections
// (torrent.Client.AddListener).
type listener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newListener() *listener {
	return &listener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for the next connection. After Close it fails with net.ErrClosed; the engine stops
// accepting once its client is closed, so close the client first: it retries Accept errors while open.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Addr names the listener; it has no port, so the engine advertises none for it.
func (l *listener) Addr() net.Addr { return listenerAddr{} }

// deliver waits until the engine accepts c, or reports false when the listener or cancel closes first.
func (l *listener) deliver(c net.Conn, cancel <-chan struct{}) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	case <-cancel:
		return false
	}
}

func (l *listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

type listenerAddr struct{}

func (listenerAddr) Network() string { return network }
func (listenerAddr) String() string  { return network }
