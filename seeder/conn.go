package seeder

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/datachannel"
)

// Limits of the data-channel net.Conn.
const (
	// safeWriteMessage is the largest data-channel message written when the peer's limit is not known (no
	// SCTP association to ask): 16 KiB is what every WebRTC implementation receives whole (see
	// pion/datachannel#59 and the WebRTC interop notes); it is also one BitTorrent block, so a piece message
	// takes two messages at most.
	safeWriteMessage = 16 << 10
	// maxWriteMessage is the largest written to a peer that receives more (its a=max-message-size, RFC 8841:
	// 64 KiB when its SDP has none; browsers say 256 KiB or more). Each message costs the browser's renderer a
	// task and the engine a parse, so fewer, larger messages cost it less CPU per byte, while one message
	// still takes only milliseconds at a browser's rates.
	maxWriteMessage = 64 << 10
	// initialReadBuffer holds any message a WebTorrent browser sends: at most one block (16 KiB) plus the
	// peer-wire header per message.
	initialReadBuffer = 32 << 10
	// maxReadMessage bounds how far the read buffer grows for a larger message (Chromium sends up to
	// 256 KiB per message). A peer sending bigger messages is not a WebTorrent client and is dropped.
	maxReadMessage = 1 << 20
	// bufferedHigh and bufferedLow bound the bytes queued in SCTP for one peer: Write waits while more than
	// bufferedHigh are queued, until the queue drains to bufferedLow. 1 MiB covers the bandwidth-delay
	// product of ~10 MB/s at 100 ms, yet a browser that stops reading cannot make the gateway hold its
	// whole request backlog (up to 16 MiB, MaxAllocPeerRequestDataPerConn) in memory.
	bufferedHigh = 1 << 20
	bufferedLow  = 256 << 10
)

// bufferedAmounter is the flow-control side of a detached pion data channel.
type bufferedAmounter interface {
	BufferedAmount() uint64
	SetBufferedAmountLowThreshold(th uint64)
	OnBufferedAmountLow(f func())
}

// dcConn presents a detached WebRTC data channel as a net.Conn for the BitTorrent engine. Messages are a
// stream of bytes to it: reads are buffered (a message cannot be read into a smaller buffer), writes are
// split into messages of at most writeMax and wait while SCTP has too much queued. Deadline
// setters never fail: the engine panics if SetDeadline returns an error.
type dcConn struct {
	rwc           datachannel.ReadWriteCloserDeadliner
	flow          bufferedAmounter // nil when the channel does not expose its queue
	local, remote net.Addr
	written       *atomic.Int64 // bytes written, shared with the seeder's stats; may be nil
	writeMax      int           // the largest message written (see writeMessageSize)
	onClose       func()        // called once by Close, after the channel is closed; may be nil

	rmu     sync.Mutex // serializes Read
	rbuf    []byte
	pending []byte // unread rest of the last message, a slice of rbuf

	wmu sync.Mutex // serializes Write, so that the chunks of two writes do not interleave

	mu            sync.Mutex
	closed        bool
	writeDeadline time.Time
	wake          chan struct{} // the queue drained or the write deadline changed
	done          chan struct{} // closed by Close
}

var _ net.Conn = (*dcConn)(nil)

// writeMessageSize is the largest message written to a peer that receives messages of up to remoteMax bytes
// (0: not known).
func writeMessageSize(remoteMax uint32) int {
	if remoteMax == 0 {
		return safeWriteMessage
	}
	return int(min(remoteMax, maxWriteMessage))
}

// newDCConn wraps a detached data channel whose peer receives messages of up to remoteMax bytes (0: not
// known).
func newDCConn(rwc datachannel.ReadWriteCloserDeadliner, local, remote net.Addr, written *atomic.Int64,
	remoteMax uint32, onClose func()) *dcConn {
	c := &dcConn{
		rwc: rwc, local: local, remote: remote, written: written, writeMax: writeMessageSize(remoteMax), onClose: onClose,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	if f, ok := rwc.(bufferedAmounter); ok {
		c.flow = f
		f.SetBufferedAmountLowThreshold(bufferedLow)
		f.OnBufferedAmountLow(c.signal)
	}
	return c
}

func (c *dcConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Read returns bytes of the next message, keeping what does not fit b for the next Read.
func (c *dcConn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(b) == 0 {
		return 0, nil
	}
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if c.rbuf == nil {
		c.rbuf = make([]byte, initialReadBuffer)
	}
	for {
		if len(b) >= len(c.rbuf) { // any message that fits the buffer fits b: skip the copy
			n, err := c.rwc.Read(b)
			if err == nil && n > 0 {
				return n, nil
			}
			if err != nil && !errors.Is(err, io.ErrShortBuffer) {
				return 0, c.readErr(err)
			}
			if err == nil { // an empty message: nothing to deliver
				continue
			}
		}
		n, err := c.rwc.Read(c.rbuf)
		if errors.Is(err, io.ErrShortBuffer) {
			if len(c.rbuf) >= maxReadMessage {
				return 0, io.ErrShortBuffer
			}
			c.rbuf = make([]byte, 2*len(c.rbuf)) // the message stays queued; read it again
			continue
		}
		if err != nil {
			return 0, c.readErr(err)
		}
		if n == 0 {
			continue
		}
		m := copy(b, c.rbuf[:n])
		c.pending = c.rbuf[m:n]
		return m, nil
	}
}

func (c *dcConn) readErr(err error) error {
	if c.isClosed() {
		return net.ErrClosed
	}
	return err
}

// Write sends b as one or more messages.
func (c *dcConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	total := 0
	for len(b) > 0 {
		if err := c.waitWritable(); err != nil {
			return total, err
		}
		n, err := c.rwc.Write(b[:min(len(b), c.writeMax)])
		total += n
		if c.written != nil {
			c.written.Add(int64(n))
		}
		if err != nil {
			if c.isClosed() {
				err = net.ErrClosed
			}
			return total, err
		}
		b = b[n:]
	}
	return total, nil
}

// waitWritable waits while more than bufferedHigh bytes are queued, until the queue drains, the write
// deadline passes or the conn closes.
func (c *dcConn) waitWritable() error {
	for {
		c.mu.Lock()
		closed, deadline := c.closed, c.writeDeadline
		c.mu.Unlock()
		if closed {
			return net.ErrClosed
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return os.ErrDeadlineExceeded
		}
		if c.flow == nil || c.flow.BufferedAmount() <= bufferedHigh {
			return nil
		}
		var expired <-chan time.Time
		var timer *time.Timer
		if !deadline.IsZero() {
			timer = time.NewTimer(time.Until(deadline))
			expired = timer.C
		}
		select {
		case <-c.wake:
		case <-c.done:
		case <-expired:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// Close closes the data channel and calls onClose (which closes the peer connection).
func (c *dcConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	// A past deadline wakes a blocked Read, and replaces the timer goroutine SCTP keeps for a pending read
	// deadline with one that ends at once.
	_ = c.rwc.SetReadDeadline(time.Now())
	c.mu.Unlock()
	err := c.rwc.Close()
	if c.onClose != nil {
		c.onClose()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func (c *dcConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *dcConn) LocalAddr() net.Addr  { return c.local }
func (c *dcConn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets both deadlines. Like the other setters it never fails.
func (c *dcConn) SetDeadline(t time.Time) error {
	_ = c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline passes the deadline to the SCTP stream, unless the conn is closed.
func (c *dcConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		_ = c.rwc.SetReadDeadline(t)
	}
	return nil
}

// SetWriteDeadline bounds Write's wait for the send queue to drain (and SCTP's own wait when the API
// blocks writes).
func (c *dcConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.writeDeadline = t
	_ = c.rwc.SetWriteDeadline(t)
	c.signal()
	return nil
}

// peerAddr is the address of one end of a WebRTC connection: the ICE candidate's IP and port.
type peerAddr struct{ ap netip.AddrPort }

// network is what the engine records as the peer's network, as its own WebRTC transport does.
const network = "webrtc"

func (a peerAddr) Network() string          { return network }
func (a peerAddr) String() string           { return a.ap.String() }
func (a peerAddr) AddrPort() netip.AddrPort { return a.ap }
