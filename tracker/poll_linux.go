package tracker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// poller watches idle sockets for readability with one epoll instance, so that an idle socket costs no
// goroutine: each socket is registered level-triggered and one-shot, and when it turns readable the poller
// starts a goroutine that serves what it has buffered and re-arms it. The poller's goroutine also runs the
// sweeper between waits.
type poller struct {
	t    *Tracker
	epfd int
	wake int // an eventfd that interrupts epoll_wait to stop

	// life guards the descriptors: they are closed, under the write lock, only once stopped is set.
	life    sync.RWMutex
	stopped bool

	mu    sync.Mutex
	slots []*conn // by slot; the event's data names slot and generation, so a stale event finds no socket
	free  []uint32
	gen   uint32

	done chan struct{}
}

// maxEvents is how many readiness events one epoll_wait returns.
const maxEvents = 256

var errPollerStopped = errors.New("tracker: poller stopped")

func newPoller(t *Tracker) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("tracker: epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("tracker: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1, Pad: -1}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wake)
		return nil, fmt.Errorf("tracker: epoll: %w", err)
	}
	p := &poller{t: t, epfd: epfd, wake: wake, done: make(chan struct{})}
	go p.run()
	return p, nil
}

// add registers the socket, armed; it reports false when the socket cannot be polled (it is not a plain TCP or
// Unix socket: TLS, for one, buffers records above the file descriptor).
func (p *poller) add(c *conn) bool {
	switch c.ws.NetConn().(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return false
	}
	p.mu.Lock()
	if len(p.free) > 0 {
		c.slot = p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
	} else {
		c.slot = uint32(len(p.slots))
		p.slots = append(p.slots, nil)
	}
	p.gen++
	c.gen = p.gen
	p.slots[c.slot] = c
	p.mu.Unlock()
	c.polled = true
	c.state.Store(stIdle)
	if p.ctlLive(c, unix.EPOLL_CTL_ADD) != nil {
		p.remove(c)
		c.polled = false
		c.state.Store(stBusy)
		return false
	}
	return true
}

func (p *poller) ctl(c *conn, op int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(c.slot), Pad: int32(c.gen)}
	raw, err := c.rawConn()
	if err != nil {
		return err
	}
	if cerr := raw.Control(func(fd uintptr) { err = unix.EpollCtl(p.epfd, op, int(fd), &ev) }); cerr != nil {
		return cerr
	}
	return err
}

// ctlLive is ctl while the poller runs.
func (p *poller) ctlLive(c *conn, op int) error {
	p.life.RLock()
	defer p.life.RUnlock()
	if p.stopped {
		return errPollerStopped
	}
	return p.ctl(c, op)
}

// arm re-arms an idle socket for its next readiness event.
func (p *poller) arm(c *conn) error { return p.ctlLive(c, unix.EPOLL_CTL_MOD) }

// remove forgets a socket that is closed (closing its descriptor took it out of the epoll set).
func (p *poller) remove(c *conn) {
	p.mu.Lock()
	if int(c.slot) < len(p.slots) && p.slots[c.slot] == c {
		p.slots[c.slot] = nil
		p.free = append(p.free, c.slot)
	}
	p.mu.Unlock()
}

func (p *poller) run() {
	defer func() {
		p.life.Lock()
		p.stopped = true
		_ = unix.Close(p.epfd)
		_ = unix.Close(p.wake)
		p.life.Unlock()
		close(p.done)
	}()
	events := make([]unix.EpollEvent, maxEvents)
	ready := make([]*conn, 0, maxEvents)
	every := p.t.sweepInterval()
	next := time.Now().Add(every)
	for {
		wait := max(time.Until(next), 0)
		n, err := unix.EpollWait(p.epfd, events, int(wait/time.Millisecond)+1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			p.t.log.Error("tracker: epoll_wait failed; sockets are no longer served", slog.Any("err", err))
			return
		}
		ready = ready[:0]
		p.mu.Lock()
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == -1 {
				p.mu.Unlock()
				return // stop
			}
			if s := int(uint32(ev.Fd)); s < len(p.slots) {
				if c := p.slots[s]; c != nil && c.gen == uint32(ev.Pad) {
					ready = append(ready, c)
				}
			}
		}
		p.mu.Unlock()
		for _, c := range ready {
			if c.state.CompareAndSwap(stIdle, stBusy) {
				go c.serve()
			}
		}
		if now := time.Now(); !now.Before(next) {
			p.t.sweep(now)
			next = now.Add(every)
		}
	}
}

// stop ends the poller's goroutine and waits for it.
func (p *poller) stop() {
	p.life.RLock()
	if !p.stopped {
		one := [8]byte{1}
		_, _ = unix.Write(p.wake, one[:])
	}
	p.life.RUnlock()
	<-p.done
}
