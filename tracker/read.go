package tracker

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// readBufferSize is the read buffer lent to a socket while its reads are served. It holds a few announces (a
// few hundred bytes each without offers); longer messages are read through it.
const readBufferSize = 4 << 10

// scratch is what a goroutine serving a socket's reads borrows: the socket's read buffer, the message being
// read, and the reply being encoded. Idle sockets hold none of it.
type scratch struct {
	rd  bufio.Reader
	msg []byte
	out []byte
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{rd: *bufio.NewReaderSize(nil, readBufferSize), msg: make([]byte, 0, readBufferSize)}
}}

// maxPooledMessage bounds the message buffer kept in the pool, so that one large message does not pin its
// buffer.
const maxPooledMessage = 16 << 10

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(s *scratch) {
	if cap(s.msg) > maxPooledMessage {
		s.msg = make([]byte, 0, readBufferSize)
	}
	if cap(s.out) > maxPooledMessage {
		s.out = nil
	}
	scratchPool.Put(s)
}

// lend gives the socket's reader s's buffer. gorilla/websocket keeps one bufio.Reader per connection for good;
// swapping the buffer in and out of it (a bufio.Reader is a plain struct) leaves an idle socket without one.
func (c *conn) lend(s *scratch) {
	*c.br = s.rd
	c.br.Reset(c.ws.NetConn())
}

// reclaim takes the buffer back. The reader must hold no unread bytes.
func (c *conn) reclaim(s *scratch) {
	s.rd = *c.br
	s.rd.Reset(nil)
	*c.br = bufio.Reader{}
}

// hijackWriter hands gorilla/websocket a bufio.Reader of the tracker's when it hijacks the connection, so that
// the tracker can lend that reader its buffer only while reading (gorilla reuses a hijacked reader of more than
// 256 bytes as its own).
type hijackWriter struct {
	http.ResponseWriter
	s  *scratch
	br *bufio.Reader // set when the connection is hijacked
}

func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := h.ResponseWriter.(http.Hijacker).Hijack()
	if err != nil || brw.Reader.Buffered() > 0 { // gorilla refuses the latter
		return nc, brw, err
	}
	h.br = new(bufio.Reader)
	*h.br = h.s.rd
	h.br.Reset(nc)
	h.s.rd = bufio.Reader{}
	return nc, bufio.NewReadWriter(h.br, brw.Writer), nil
}

// serve serves the socket's reads while it has bytes buffered, then returns it to the poller; if the socket
// cannot be re-armed (it closed) serve takes it back and finds out. The caller has moved c to stBusy.
func (c *conn) serve() {
	for {
		if !c.readAvailable() {
			c.state.Store(stDead)
			c.t.drop(c)
			return
		}
		c.state.Store(stIdle)
		if c.t.arm(c) == nil {
			return
		}
		if !c.state.CompareAndSwap(stIdle, stBusy) {
			return // the sweeper or Close took it
		}
	}
}

// serveBlocking serves a socket that cannot be polled on a goroutine of its own, as long as it stays open.
func (c *conn) serveBlocking() {
	for c.readAvailable() {
	}
	c.state.Store(stDead)
	c.t.drop(c)
}

// readAvailable reads and serves one message (or control frame), then more while bytes remain buffered. It
// reports false when the socket is done.
func (c *conn) readAvailable() bool {
	s := getScratch()
	defer putScratch(s)
	if c.br == nil { // gorilla kept its own reader: read one message at a time
		return c.readFrame(s)
	}
	c.lend(s)
	defer c.reclaim(s)
	for {
		if !c.readFrame(s) {
			return false
		}
		if c.br.Buffered() == 0 {
			return true
		}
	}
}

// readFrame reads one message, or one ping or pong between messages, and serves it.
func (c *conn) readFrame(s *scratch) bool {
	if c.br != nil {
		if ok, handled := c.readControl(); handled {
			return ok
		}
	}
	typ, rd, err := c.ws.NextReader()
	if err == nil {
		s.msg, err = readAll(rd, s.msg[:0])
	}
	if err != nil {
		if errors.Is(err, websocket.ErrReadLimit) {
			c.t.stats.refused.Add(1)
			c.refuse(websocket.CloseMessageTooBig, "message larger than the tracker accepts")
		}
		return false
	}
	now := time.Now().UnixNano()
	c.lastRead.Store(now)
	t := c.t
	t.stats.messagesIn.Add(1)
	if typ != websocket.TextMessage {
		t.stats.refused.Add(1)
		c.refuse(websocket.CloseUnsupportedData, ErrBinaryFrame.Error())
		return false
	}
	if !c.allow(now) {
		t.stats.refused.Add(1)
		if c.violations > MaxRateViolations {
			c.logger().Warn("tracker: closing flooding socket")
			c.refuse(websocket.ClosePolicyViolation, "flooding")
			return false
		}
		c.sendFailure(s, nil, ErrRateLimited)
		return true
	}
	t.handle(c, s, s.msg)
	return true
}

func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// maxControlPayload is the largest payload of a control frame (RFC 6455 section 5.5).
const maxControlPayload = 125

// readControl serves a ping or pong at the head of the read buffer, between messages, itself: gorilla would
// serve it and then wait for the next data frame, holding the goroutine while the socket idles. Frames that are
// not a plain masked ping or pong are left to gorilla (which refuses the malformed ones). handled reports
// whether a frame was consumed; ok is false when the socket is done.
func (c *conn) readControl() (ok, handled bool) {
	p, err := c.br.Peek(2)
	if err != nil {
		return false, true // the read gorilla would make fails the same way
	}
	op := p[0]
	if (op != 0x80|websocket.PingMessage && op != 0x80|websocket.PongMessage) || p[1]&0x80 == 0 ||
		p[1]&0x7f > maxControlPayload {
		return false, false
	}
	n := 6 + int(p[1]&0x7f)
	if p, err = c.br.Peek(n); err != nil {
		return false, true
	}
	var payload [maxControlPayload]byte
	data := payload[:n-6]
	for i := range data {
		data[i] = p[6+i] ^ p[2+i%4]
	}
	_, _ = c.br.Discard(n)
	now := time.Now()
	c.lastRead.Store(now.UnixNano())
	if op&0x0f == websocket.PingMessage {
		err := c.ws.WriteControl(websocket.PongMessage, data, now.Add(c.t.cfg.WriteTimeout))
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			return false, true
		}
	}
	return true, true
}

// sendFailure refuses a request with the error's reason.
func (c *conn) sendFailure(s *scratch, req *Request, err error) {
	c.sendJSON(s, failure(req, err))
}

// logRefused logs a refusal.
func (c *conn) logRefused(req *Request, err error) {
	if c.t.log.Enabled(context.Background(), slog.LevelDebug) {
		c.logger().Debug("tracker: refused", slog.String("action", req.Action), slog.Any("err", err))
	}
}
