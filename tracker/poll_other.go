//go:build !linux

package tracker

import (
	"errors"
	"sync"
	"time"
)

// poller, where there is no epoll, only runs the sweeper: every socket is served by a goroutine of its own
// (conn.serveBlocking).
type poller struct {
	t       *Tracker
	quit    chan struct{}
	done    chan struct{}
	stopped sync.Once // Tracker.Close may run twice (the gateway's Run, then its deferred Close)
}

var errPollerStopped = errors.New("tracker: poller stopped")

func newPoller(t *Tracker) (*poller, error) {
	p := &poller{t: t, quit: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p, nil
}

func (p *poller) add(*conn) bool  { return false }
func (p *poller) arm(*conn) error { return errPollerStopped }
func (p *poller) remove(*conn)    {}

func (p *poller) run() {
	defer close(p.done)
	tick := time.NewTicker(p.t.sweepInterval())
	defer tick.Stop()
	for {
		select {
		case <-p.quit:
			return
		case now := <-tick.C:
			p.t.sweep(now)
		}
	}
}

func (p *poller) stop() {
	p.stopped.Do(func() { close(p.quit) })
	<-p.done
}
