package gateway

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Defaults for Config's timeouts and caps.
const (
	// DefaultMaxConnsPerClient bounds the TCP connections one address (an IPv6 /64) holds open to the gateway.
	// A browser opens up to 6 connections to a host plus a tracker socket, so 512 lets some 70 visitors load
	// pages at once behind one NAT; a connection costs a descriptor, and one address cannot take more than
	// 2.5% of the machine's 20,000.
	DefaultMaxConnsPerClient = 512
	// DefaultIdleTimeout is how long a kept-alive connection may wait for its next request: browsers reuse a
	// connection within a page's life, and 75 s is the keep-alive that nginx gives them.
	DefaultIdleTimeout = 75 * time.Second
	// DefaultProgressTimeout bounds every wait on a client within a request: a body read that gets no byte,
	// and a response write (of at most progressChunk) that the client does not take. A browser on a poor
	// link still moves a chunk within it; a stalled or malicious client is cut off. Long responses
	// (downloads, the dashboard's status stream) live as long as they make progress.
	DefaultProgressTimeout = 30 * time.Second
	// readHeaderTimeout bounds the reading of a request's header: it is small and sent at once.
	readHeaderTimeout = 10 * time.Second
	// progressChunk is the most written under one write deadline: 64 KiB in 30 s is 17 kbit/s, below any
	// link a page is usable over.
	progressChunk = 64 << 10
)

// limitListener closes connections beyond max from one address (an IPv6 /64); the trusted proxies' are
// not counted: they carry many clients, whose caps are kept by client (the tracker's) instead.
type limitListener struct {
	net.Listener
	max     int
	trusted []netip.Prefix
	log     *slog.Logger

	mu   sync.Mutex
	open map[netip.Prefix]int
}

func newLimitListener(ln net.Listener, max int, trusted []netip.Prefix, log *slog.Logger) net.Listener {
	if max < 0 {
		return ln
	}
	return &limitListener{Listener: ln, max: max, trusted: trusted, log: log, open: map[netip.Prefix]int{}}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		a := peerAddr(c.RemoteAddr().String())
		if !a.IsValid() || isTrusted(a, l.trusted) {
			return c, nil
		}
		k := addrKey(a)
		l.mu.Lock()
		if l.open[k] >= l.max {
			l.mu.Unlock()
			l.log.Debug("gateway: too many connections from one address", slog.String("client", k.String()))
			_ = c.Close()
			continue
		}
		l.open[k]++
		l.mu.Unlock()
		return &limitedConn{Conn: c, release: func() { l.release(k) }}, nil
	}
}

func (l *limitListener) release(k netip.Prefix) {
	l.mu.Lock()
	if l.open[k]--; l.open[k] <= 0 {
		delete(l.open, k)
	}
	l.mu.Unlock()
}

// addrKey is the unit caps per address are kept for: an IPv4 address, or an IPv6 /64 (one host usually
// has a whole /64).
func addrKey(a netip.Addr) netip.Prefix {
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// limitedConn gives its place back when closed. It passes on the descriptor (the tracker polls idle
// sockets) and ReadFrom (sendfile).
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func (c *limitedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

func (c *limitedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// withProgressDeadlines serves next with deadlines that follow progress instead of bounding a request's
// whole life: the server's ReadTimeout and WriteTimeout would cut off a long download or the dashboard's
// status stream. A request without a body has its read deadline cleared (the server only watches for
// the client going); each read of a body and each write of a response gets d. Upgraded connections are
// hijacked, which clears all deadlines: the tracker keeps its own.
func withProgressDeadlines(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.Body == nil || r.Body == http.NoBody {
			_ = rc.SetReadDeadline(time.Time{})
		} else {
			r.Body = &progressBody{ReadCloser: r.Body, rc: rc, d: d}
		}
		pw := &progressWriter{ResponseWriter: w, rc: rc, d: d}
		next.ServeHTTP(pw, r)
		pw.extend() // for what the server writes after the handler: a header never written, a buffered tail
	})
}

// progressBody moves the read deadline on with each read, and clears it at the end of the body.
type progressBody struct {
	io.ReadCloser
	rc *http.ResponseController
	d  time.Duration
}

func (b *progressBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.d))
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// progressWriter gives each write of at most progressChunk its own write deadline.
type progressWriter struct {
	http.ResponseWriter
	rc       *http.ResponseController
	d        time.Duration
	hijacked bool // the connection is someone else's: its deadlines are not ours to set
}

func (w *progressWriter) extend() {
	if !w.hijacked {
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	}
}

func (w *progressWriter) WriteHeader(code int) {
	w.extend()
	w.ResponseWriter.WriteHeader(code)
}

func (w *progressWriter) Write(p []byte) (int, error) {
	written := 0
	for {
		n := min(len(p), progressChunk)
		w.extend()
		m, err := w.ResponseWriter.Write(p[:n])
		written += m
		p = p[n:]
		if err != nil || len(p) == 0 {
			return written, err
		}
	}
}

// ReadFrom copies in chunks of progressChunk, each under its own deadline; a file (or a limited reader of
// one) stays a file, so the server can still use sendfile.
func (w *progressWriter) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{w}, src)
	}
	lr, limited := src.(*io.LimitedReader)
	var total int64
	for {
		chunk := &io.LimitedReader{R: src, N: progressChunk}
		if limited {
			if lr.N <= 0 {
				return total, nil
			}
			chunk = &io.LimitedReader{R: lr.R, N: min(lr.N, progressChunk)}
		}
		want := chunk.N
		w.extend()
		n, err := rf.ReadFrom(chunk)
		total += n
		if limited {
			lr.N -= n
		}
		if err != nil || n < want {
			return total, err
		}
	}
}

func (w *progressWriter) Flush() {
	w.extend()
	_ = w.rc.Flush()
}

// Hijack hands the connection over (the tracker asserts http.Hijacker); the server clears its deadlines.
func (w *progressWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := w.rc.Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
