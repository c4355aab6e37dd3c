package trackerload

import (
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// loadConn is one socket of the load generator. Its reads happen on one goroutine; its writes on whichever
// goroutine passes it the turn to announce, under wmu.
type loadConn struct {
	ws    *websocket.Conn
	group atomic.Pointer[group] // set for the throughput phase

	wmu  sync.Mutex
	ann  announcer
	wbuf []byte

	// sentAt is when the announce awaiting its reply was sent, in nanoseconds since the run started; zero when
	// none is outstanding. Whoever swaps it to zero owns the reply (the reader, or the watchdog on timeout).
	sentAt atomic.Int64
	// nextAllowed is the earliest time, in the same clock, at which the socket may announce again.
	nextAllowed atomic.Int64
	dead        atomic.Bool

	// Read side, touched only by the reading goroutine.
	rbuf   []byte
	joined chan struct{} // closed at the reply to the first announce
	first  bool          // the first reply has been seen
}

// group is the share of sockets one in-flight announce cycles over.
type group struct {
	conns []*loadConn
	next  atomic.Uint32
}

// closeNow closes the socket without a closing handshake, resetting the TCP connection so that no port is left
// in TIME_WAIT: a benchmark of 10,000 sockets run twice would otherwise hold 20,000 ephemeral ports.
func (c *loadConn) closeNow() {
	c.dead.Store(true)
	if tc, ok := c.ws.UnderlyingConn().(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.ws.Close()
}

// readLoop reads the socket's messages until it closes.
func (r *runner) readLoop(c *loadConn) {
	defer r.reader.Done()
	for {
		msg, err := c.readMessage()
		if err != nil {
			if !c.dead.Swap(true) { // not closed by us
				r.socketErr.Add(1)
				r.noteErr(err)
			}
			if c.sentAt.Swap(0) != 0 {
				r.passFrom(c.group.Load())
			}
			return
		}
		r.onMessage(c, msg)
	}
}

func (c *loadConn) readMessage() ([]byte, error) {
	_, rd, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	c.rbuf = c.rbuf[:0]
	for {
		if len(c.rbuf) == cap(c.rbuf) {
			c.rbuf = append(c.rbuf, 0)[:len(c.rbuf)]
		}
		n, err := rd.Read(c.rbuf[len(c.rbuf):cap(c.rbuf)])
		c.rbuf = c.rbuf[:len(c.rbuf)+n]
		if err == io.EOF {
			return c.rbuf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (r *runner) onMessage(c *loadConn, msg []byte) {
	k := classify(msg)
	switch k {
	case kindOffer:
		r.offersReceived.Add(1)
		return
	case kindAnswer:
		r.answersReceived.Add(1)
		return
	case kindOther:
		r.unexpected.Add(1)
		return
	}
	now := r.now()
	sent := c.sentAt.Swap(0)
	if sent == 0 { // a reply after its announce timed out
		r.unexpected.Add(1)
		return
	}
	phase := r.phase.Load()
	if k == kindFailure {
		r.failures.Add(1)
		if phase == phaseMeasure && sent >= r.measureStart.Load() {
			r.measuredFailures.Add(1)
		}
	} else {
		r.replies.Add(1)
		if phase == phaseMeasure && sent >= r.measureStart.Load() {
			r.record(now - sent)
		}
	}
	if phase == phaseConnect {
		if !c.first {
			c.first = true
			if k != kindFailure {
				r.joined.Add(1)
			}
			close(c.joined)
		}
		return
	}
	r.passFrom(c.group.Load())
}

// passFrom gives the turn to announce to the next live socket of the group.
func (r *runner) passFrom(g *group) {
	if g == nil {
		return
	}
	for range len(g.conns) {
		if !r.running() {
			return
		}
		c := g.conns[int(g.next.Add(1)%uint32(len(g.conns)))]
		if c.dead.Load() {
			continue
		}
		if r.turn(c) {
			return
		}
	}
	r.lostTurns.Add(1)
}

// turn makes c announce, now or as soon as its rate allows. It reports false when c cannot announce.
func (r *runner) turn(c *loadConn) bool {
	wait := c.nextAllowed.Load() - r.now()
	if wait <= 0 {
		return r.send(c, "", rand.Float64() < r.cfg.OfferFraction)
	}
	r.paced.Add(1)
	r.timers.Add(1)
	time.AfterFunc(time.Duration(wait), func() {
		defer r.timers.Done()
		if r.running() && !r.send(c, "", rand.Float64() < r.cfg.OfferFraction) {
			r.passFrom(c.group.Load())
		}
	})
	return true
}

// send writes one announce on c and marks it outstanding.
func (r *runner) send(c *loadConn, event string, withOffer bool) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.dead.Load() {
		return false
	}
	c.wbuf = c.ann.appendAnnounce(c.wbuf[:0], event, withOffer)
	now := r.now()
	c.nextAllowed.Store(now + r.gap)
	c.sentAt.Store(now)
	if err := c.ws.WriteMessage(websocket.TextMessage, c.wbuf); err != nil {
		c.sentAt.CompareAndSwap(now, 0)
		if !c.dead.Load() {
			r.socketErr.Add(1)
			r.noteErr(err)
		}
		c.closeNow()
		return false
	}
	if withOffer {
		r.offersSent.Add(1)
	}
	return true
}
