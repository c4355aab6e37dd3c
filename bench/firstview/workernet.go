package firstview

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/swarmgate/swarmgate/swarmapi"
)

// Chromium's network emulation does not reach the requests a dedicated worker makes, and swarmgate's engine
// runs in one: its webseed Range requests, its webseed polls and its tracker WebSocket. Neither
// the tab's conditions nor the same conditions set in a session attached to the worker's own target slowed
// them (measured on Chromium 156 with 2 MB fetched by a worker at 80 ms and 8 Mbit/s: 164 to 183 ms in every
// case, as unthrottled; the same fetch from the page took 2.3 s), and Network.emulateNetworkConditions is
// "not supported" on a worker target. Left so, a first view through swarmgate would get its webseed bytes and
// its signalling at loopback speed while direct paid the emulated network for every byte.
//
// engineNet applies the conditions at the server instead, to exactly those paths, which only the engine
// uses: each request waits the latency before the gateway sees it (as Chromium adds it once per request);
// response bodies are paced at the download rate, one budget shared by all of them (a visitor's link); and
// what the tracker sends over its WebSocket, its handshake's answer included, is delayed by the latency (one
// latency for the handshake, as Chromium adds to a page's WebSocket; and each answer to an announce comes a
// round trip after it, as it would across a network). What it does not model: the page's own requests and the
// engine's share one link in reality, and here each has its own budget, which still favours swarmgate when both
// download at once. The engine's reports go from the page (sendBeacon), under the tab's conditions.
type engineNet struct {
	next     http.Handler
	latency  time.Duration
	lim      *rate.Limiter // nil: no rate cap
	requests atomic.Int64  // the engine's requests given the conditions
}

// newEngineNet wraps a gateway's handler with the conditions of n, which must be emulated.
func newEngineNet(next http.Handler, n Network) *engineNet {
	e := &engineNet{next: next, latency: n.Latency}
	if n.Download > 0 {
		e.lim = rate.NewLimiter(rate.Limit(n.Download/8), paceChunk)
	}
	return e
}

// paceChunk is the most one write takes from the rate budget at once.
const paceChunk = 16 << 10

// enginePath says whether the engine, and nothing else of a page, requests path.
func enginePath(path string) bool {
	return strings.HasPrefix(path, swarmapi.PathSeed) || path == swarmapi.PathAnnounce || path == swarmapi.PathWebseeds
}

func (e *engineNet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !enginePath(r.URL.Path) {
		e.next.ServeHTTP(w, r)
		return
	}
	e.requests.Add(1)
	if websocket.IsWebSocketUpgrade(r) {
		// The handshake's answer goes through the delayed connection: one latency, as for any request.
		e.next.ServeHTTP(&pacedWriter{ResponseWriter: w, ctx: r.Context(), e: e}, r)
		return
	}
	t := time.NewTimer(e.latency)
	select {
	case <-r.Context().Done():
		t.Stop()
		return
	case <-t.C:
	}
	e.next.ServeHTTP(&pacedWriter{ResponseWriter: w, ctx: r.Context(), e: e}, r)
}

// pacedWriter paces a response body at the engineNet's rate; a hijacked connection (the tracker's
// WebSocket) delays what is written to it instead.
type pacedWriter struct {
	http.ResponseWriter
	ctx context.Context
	e   *engineNet
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		n := min(len(b), paceChunk)
		if p.e.lim != nil {
			if err := p.e.lim.WaitN(p.ctx, n); err != nil {
				return written, err
			}
		}
		m, err := p.ResponseWriter.Write(b[:n])
		written += m
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

func (p *pacedWriter) Flush() {
	_ = http.NewResponseController(p.ResponseWriter).Flush()
}

func (p *pacedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(p.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	d := newDelayedConn(c, p.e.latency)
	return d, bufio.NewReadWriter(rw.Reader, bufio.NewWriter(d)), nil
}

// delayedConn delivers what is written to it latency later, in order; Write returns at once, as a socket's
// send buffer would. Close sends what is queued first.
type delayedConn struct {
	net.Conn
	latency time.Duration

	mu     sync.Mutex
	queue  []delayed
	wake   chan struct{} // signalled when queue gains an entry
	closed bool
	err    error // the first failed write: later writes return it
	done   chan struct{}
}

type delayed struct {
	data  []byte
	at    time.Time
	close bool
}

func newDelayedConn(c net.Conn, latency time.Duration) *delayedConn {
	d := &delayedConn{Conn: c, latency: latency, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go d.run()
	return d
}

func (d *delayedConn) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, net.ErrClosed
	}
	if d.err != nil {
		return 0, d.err
	}
	d.queue = append(d.queue, delayed{data: append([]byte(nil), b...), at: time.Now().Add(d.latency)})
	d.signal()
	return len(b), nil
}

func (d *delayedConn) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Close queues the close behind what was written, then waits until it has happened.
func (d *delayedConn) Close() error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		d.queue = append(d.queue, delayed{close: true, at: time.Now().Add(d.latency)})
		d.signal()
	}
	d.mu.Unlock()
	<-d.done
	return nil
}

// run sends each queued write once it is due.
func (d *delayedConn) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.mu.Unlock()
			<-d.wake
			continue
		}
		next := d.queue[0]
		d.mu.Unlock()
		if wait := time.Until(next.at); wait > 0 {
			time.Sleep(wait)
		}
		d.mu.Lock()
		d.queue = d.queue[1:]
		d.mu.Unlock()
		if next.close {
			_ = d.Conn.Close()
			return
		}
		if _, err := d.Conn.Write(next.data); err != nil {
			d.mu.Lock()
			if d.err == nil {
				d.err = fmt.Errorf("firstview: delayed write: %w", err)
			}
			d.mu.Unlock()
			if errors.Is(err, net.ErrClosed) {
				_ = d.Conn.Close()
				return
			}
		}
	}
}

// serveEngineNet serves handler with engineNet's conditions for n on a loopback port of its own, until stop;
// requests says how many of the engine's requests got them so far. The gateway's own listener settings (its
// per-client connection limit, progress deadlines, the uplink's ordering) are not on this port: one visitor
// on an idle gateway reaches none of them.
func serveEngineNet(handler http.Handler, n Network) (addr string, requests func() int64, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, fmt.Errorf("firstview: %w", err)
	}
	e := newEngineNet(handler, n)
	hs := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	return ln.Addr().String(), e.requests.Load, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if hs.Shutdown(ctx) != nil {
			_ = hs.Close()
		}
		<-done
	}, nil
}
