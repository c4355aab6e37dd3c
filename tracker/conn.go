package tracker

import (
	"log/slog"
	"sync"
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

// conn is one client socket. Its reads happen on the goroutine serving the HTTP request; its writes on a
// goroutine started when a message is queued and ended when the queue is empty, so an idle socket costs one
// goroutine.
type conn struct {
	t   *Tracker
	ws  *websocket.Conn
	log *slog.Logger

	// Guarded by Tracker.mu.
	peers   map[peerKey]*peer // this socket's peers: one per torrent, or several where clients share a socket
	pending map[pendingKey]pendingOffer

	wmu     sync.Mutex
	queue   [][]byte
	writing bool
	closing bool          // refused: queue no more messages
	idle    chan struct{} // closed when the write loop stops, if someone waits for it
	closed  bool

	// Read side, touched only by the reading goroutine.
	tokens     float64
	lastRefill time.Time
	violations int

	pingTimer *time.Timer
}

// allow takes a token from the socket's bucket.
func (c *conn) allow(now time.Time) bool {
	c.tokens += now.Sub(c.lastRefill).Seconds() * c.t.cfg.MessageRate
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
func (c *conn) send(msg []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed || c.closing {
		return
	}
	if len(c.queue) >= MaxQueuedMessages {
		c.log.Warn("tracker: closing slow socket", slog.Int("queued", len(c.queue)))
		c.closeLocked(websocket.ClosePolicyViolation, "too slow to read")
		return
	}
	c.queue = append(c.queue, msg)
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
}

func (c *conn) writeLoop() {
	for {
		c.wmu.Lock()
		batch := c.queue
		c.queue = nil
		if len(batch) == 0 || c.closed {
			c.stopWritingLocked()
			c.wmu.Unlock()
			return
		}
		c.wmu.Unlock()
		for _, msg := range batch {
			_ = c.ws.SetWriteDeadline(time.Now().Add(c.t.cfg.WriteTimeout))
			if err := c.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
				c.log.Debug("tracker: write failed", slog.Any("err", err))
				c.wmu.Lock()
				c.closeLocked(websocket.CloseAbnormalClosure, "")
				c.stopWritingLocked()
				c.wmu.Unlock()
				return
			}
			c.t.stats.messagesOut.Add(1)
		}
	}
}

func (c *conn) stopWritingLocked() {
	c.writing = false
	if c.idle != nil {
		close(c.idle)
		c.idle = nil
	}
}

// ping keeps the socket's liveness check going: a socket that stops answering is closed by its read deadline.
func (c *conn) ping() {
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.t.cfg.WriteTimeout)); err != nil {
		c.close(websocket.CloseAbnormalClosure, "")
		return
	}
	c.wmu.Lock()
	if !c.closed {
		c.pingTimer.Reset(c.t.cfg.PingInterval)
	}
	c.wmu.Unlock()
}

// close ends the socket, sending a close frame with the code and reason when code is one that may be sent.
func (c *conn) close(code int, reason string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.closeLocked(code, reason)
}

// refuse closes the socket from its reading goroutine for misbehaving: it lets queued replies go out, sends
// the close frame, then reads
// and discards until the client's close arrives (or closeGrace passes), so the client receives the replies
// already sent and the reason instead of a connection reset.
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
	select { // let the replies already queued go out before the close frame
	case <-idle:
	case <-time.After(closeGrace):
	}
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
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
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
