package tracker

import (
	"bufio"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// peerKey names a peer in a swarm.
type peerKey struct{ infoHash, peerID ID }

// pendingKey names an offer relayed to a connection: the answer must name the same swarm, offer and offerer.
type pendingKey struct{ infoHash, offerID, from ID }

type pendingOffer struct {
	from    *conn
	expires time.Time
}

// Read states of a socket. An idle socket is owned by nobody: it waits in the poller, armed for one readiness
// event. Whoever moves it from idle to busy (the poller on readiness, the sweeper or Close to reap it) owns its
// reads until it returns it to idle and re-arms it, or drops it as dead.
const (
	stIdle int32 = iota
	stBusy
	stDead
)

// conn is one client socket. An idle socket holds no goroutine and no read or write buffer: its reads run on a
// short-lived goroutine started when the poller sees it readable (poll_linux.go), or, where it cannot be
// polled, on a goroutine of its own (serveBlocking). Its replies are written by that reading goroutine; messages
// from other sockets' goroutines (relayed offers and answers, pings) by a goroutine started when one is queued
// and ended when the queue is empty.
type conn struct {
	t      *Tracker
	ws     *websocket.Conn
	client netip.Prefix  // whose holdings the socket counts in (Config.Client)
	br     *bufio.Reader // ws's read buffer; holds a buffer only while lent (see lend)
	polled bool          // registered with the poller

	state atomic.Int32 // stIdle, stBusy or stDead
	slot  uint32       // the poller's handle for the socket
	gen   uint32

	// Liveness, in nanoseconds since the Unix epoch: when a frame last arrived, when the write under way began
	// (zero when none). lastPing is the sweeper's.
	lastRead   atomic.Int64
	writeSince atomic.Int64
	lastPing   int64

	// Guarded by Tracker.mu. This socket's peers (one per torrent, or several where clients share a socket):
	// the first in peer1, the others in peers. Maps are allocated on first use: most sockets hold one peer and
	// no offers.
	peer1   *peer
	peers   map[peerKey]*peer
	pending map[pendingKey]pendingOffer
	purged  time.Time // when pending was last cleared of expired offers (expectAnswer)
	gone    bool      // dropped: takes no more peers

	wmu     sync.Mutex
	queue   [][]byte
	writing bool
	pingDue bool          // a ping waits for the writer
	closing bool          // refused: queue no more messages
	idle    chan struct{} // closed when the write loop stops, if someone waits for it
	closed  bool

	// Read side, touched only by the goroutine that owns the reads.
	tokens     float64
	lastRefill int64 // nanoseconds since the Unix epoch
	violations int
}

func (c *conn) logger() *slog.Logger {
	return c.t.log.With(slog.String("remote", c.ws.RemoteAddr().String()))
}

// peer returns the socket's peer of that key, or nil. Called with Tracker.mu held, as are the three below.
func (c *conn) peer(k peerKey) *peer {
	if p := c.peer1; p != nil && p.key() == k {
		return p
	}
	return c.peers[k]
}

func (c *conn) numPeers() int {
	if c.peer1 == nil {
		return len(c.peers)
	}
	return 1 + len(c.peers)
}

func (c *conn) addPeer(p *peer) {
	if c.peer1 == nil {
		c.peer1 = p
		return
	}
	if c.peers == nil {
		c.peers = make(map[peerKey]*peer)
	}
	c.peers[p.key()] = p
}

func (c *conn) removePeer(p *peer) {
	if c.peer1 == p {
		c.peer1 = nil
		return
	}
	delete(c.peers, p.key())
}

// allow takes a token from the socket's bucket.
func (c *conn) allow(now int64) bool {
	c.tokens += float64(now-c.lastRefill) / float64(time.Second) * c.t.cfg.MessageRate
	c.lastRefill = now
	if c.tokens > c.t.cfg.MessageBurst {
		c.tokens = c.t.cfg.MessageBurst
	}
	if c.tokens < 1 {
		c.violations++
		return false
	}
	c.tokens--
	return true
}

// send queues a message for the socket. A socket that lets MaxQueuedMessages pile up is closed.
//
// own is true when the caller is the goroutine that owns the socket's reads: it then writes the message itself
// when no write is under way (msg may then be a scratch buffer, which is copied if it must wait). Other callers
// hand msg over and a write goroutine is started, so that a slow socket never holds up another's goroutine.
func (c *conn) send(msg []byte, own bool) {
	c.wmu.Lock()
	if c.closed || c.closing {
		c.wmu.Unlock()
		return
	}
	if c.writing {
		if len(c.queue) >= MaxQueuedMessages {
			c.logger().Warn("tracker: closing slow socket", slog.Int("queued", len(c.queue)))
			c.closeLocked(websocket.ClosePolicyViolation, "too slow to read")
			c.wmu.Unlock()
			return
		}
		if own {
			msg = append([]byte(nil), msg...)
		}
		c.queue = append(c.queue, msg)
		c.wmu.Unlock()
		return
	}
	c.writing = true
	if !own {
		c.queue = append(c.queue, msg)
		c.wmu.Unlock()
		go c.writeLoop(nil)
		return
	}
	c.wmu.Unlock()
	c.writeLoop(msg)
}

// ping queues a ping for the writer.
func (c *conn) ping() {
	c.wmu.Lock()
	if c.closed || c.closing {
		c.wmu.Unlock()
		return
	}
	c.pingDue = true
	if c.writing {
		c.wmu.Unlock()
		return
	}
	c.writing = true
	c.wmu.Unlock()
	go c.writeLoop(nil)
}

// writeLoop writes first, if not nil, then whatever is queued, until the queue is empty. The caller has set
// c.writing. Writes carry no deadline of their own: the sweeper closes a socket whose write has been under way
// for longer than Config.WriteTimeout, which ends the write.
func (c *conn) writeLoop(first []byte) {
	if first != nil && !c.write(websocket.TextMessage, first) {
		return
	}
	var batch [][]byte
	for {
		c.wmu.Lock()
		ping := c.pingDue
		c.pingDue = false
		if c.closed || (!ping && len(c.queue) == 0) {
			c.stopWritingLocked()
			c.wmu.Unlock()
			return
		}
		batch, c.queue = c.queue, batch[:0]
		c.wmu.Unlock()
		if ping && !c.write(websocket.PingMessage, nil) {
			return
		}
		for i, msg := range batch {
			batch[i] = nil
			if !c.write(websocket.TextMessage, msg) {
				return
			}
		}
	}
}

// write writes one message; on failure it closes the socket, ends the writer's turn and reports false.
func (c *conn) write(typ int, msg []byte) bool {
	now := time.Now()
	c.writeSince.Store(now.UnixNano())
	var err error
	if typ == websocket.PingMessage {
		err = c.ws.WriteControl(websocket.PingMessage, nil, now.Add(c.t.cfg.WriteTimeout))
	} else {
		err = c.ws.WriteMessage(typ, msg)
	}
	c.writeSince.Store(0)
	if err != nil {
		c.logger().Debug("tracker: write failed", slog.Any("err", err))
		c.wmu.Lock()
		c.closeLocked(websocket.CloseAbnormalClosure, "")
		c.stopWritingLocked()
		c.wmu.Unlock()
		return false
	}
	if typ == websocket.TextMessage {
		c.t.stats.messagesOut.Add(1)
	}
	return true
}

func (c *conn) stopWritingLocked() {
	c.writing = false
	c.queue = nil
	if c.idle != nil {
		close(c.idle)
		c.idle = nil
	}
}

// close ends the socket, sending a close frame with the code and reason when code is one that may be sent.
func (c *conn) close(code int, reason string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.closeLocked(code, reason)
}

// refuse closes the socket from the goroutine that owns its reads, for misbehaving: it lets queued replies go
// out, sends the close frame, then reads and discards until the client's close arrives (or closeGrace passes),
// so the client receives the replies already sent and the reason instead of a connection reset.
func (c *conn) refuse(code int, reason string) {
	c.wmu.Lock()
	if c.closed || c.closing {
		c.wmu.Unlock()
		return
	}
	c.closing = true
	idle := make(chan struct{})
	if c.writing {
		c.idle = idle
	} else {
		close(idle)
	}
	c.wmu.Unlock()
	grace := time.NewTimer(closeGrace)
	select { // let the replies already queued go out before the close frame
	case <-idle:
	case <-grace.C:
	}
	grace.Stop()
	c.wmu.Lock()
	if !c.closed {
		c.markClosed()
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(closeGrace))
	}
	c.wmu.Unlock()
	_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
	for {
		if _, _, err := c.ws.NextReader(); err != nil {
			break
		}
	}
	_ = c.ws.Close()
}

// closeGrace bounds the wait for a refused client's close frame.
const closeGrace = time.Second

func (c *conn) markClosed() {
	c.closed = true
	c.queue = nil
	c.pingDue = false
}

func (c *conn) closeLocked(code int, reason string) {
	if c.closed {
		return
	}
	c.markClosed()
	if code != websocket.CloseAbnormalClosure {
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason),
			time.Now().Add(time.Second))
	}
	_ = c.ws.Close()
}

// reap has the socket, which its closer has closed, dropped: if no goroutine owns its reads, one is started,
// whose first read fails.
func (c *conn) reap() {
	if c.state.CompareAndSwap(stIdle, stBusy) {
		go c.serve()
	}
}

// open reports whether the socket's file descriptor is still open: a socket closed by its net.Conn's owner
// (not through the tracker) leaves the poller silently.
func (c *conn) open() bool {
	if !c.polled {
		return true
	}
	raw, err := c.rawConn()
	return err == nil && raw.Control(func(uintptr) {}) == nil
}

// rawConn returns the socket's file descriptor, for the poller. It is not kept: an idle socket would hold it.
func (c *conn) rawConn() (syscall.RawConn, error) {
	sc, ok := c.ws.NetConn().(syscall.Conn)
	if !ok {
		return nil, errNotPollable
	}
	return sc.SyscallConn()
}
