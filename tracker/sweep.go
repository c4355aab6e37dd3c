package tracker

import (
	"time"

	"github.com/gorilla/websocket"
)

// sweepInterval is how often the sweeper looks at every socket: often enough to keep the configured ping
// interval, pong wait and write timeout to within a quarter, and at least once a second.
func (t *Tracker) sweepInterval() time.Duration {
	d := min(t.cfg.PingInterval, t.cfg.PongWait, t.cfg.WriteTimeout) / 4
	return min(max(d, 5*time.Millisecond), time.Second)
}

// sweep keeps sockets' liveness without a timer or a blocked read per socket: it pings each socket every
// PingInterval, and closes those silent (no frame, no pong) for PongWait, those whose write has been under way
// for WriteTimeout, and drops those whose connection was closed under the tracker.
func (t *Tracker) sweep(now time.Time) {
	n := now.UnixNano()
	var ping, reap []*conn
	t.mu.Lock()
	for c := range t.conns {
		switch {
		case n-c.lastRead.Load() > int64(t.cfg.PongWait):
			reap = append(reap, c)
		case c.writeSince.Load() != 0 && n-c.writeSince.Load() > int64(t.cfg.WriteTimeout):
			reap = append(reap, c)
		case c.state.Load() == stIdle && !c.open():
			reap = append(reap, c)
		case n-c.lastPing >= int64(t.cfg.PingInterval):
			c.lastPing = n
			ping = append(ping, c)
		}
	}
	t.mu.Unlock()
	for _, c := range reap {
		c.close(websocket.CloseAbnormalClosure, "")
		c.reap()
	}
	for _, c := range ping {
		c.ping()
	}
}
