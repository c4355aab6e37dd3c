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
// writeTimedOut says whether a write under way since `since` (0: none) has taken longer than limit by now, both
// Unix nanoseconds. It is given one load of conn.writeSince: a second load could see the write just finished
// (0), and take now for the time the write has lasted.
func writeTimedOut(since, now int64, limit time.Duration) bool {
	return since != 0 && now-since > int64(limit)
}

func (t *Tracker) sweep(now time.Time) {
	n := now.UnixNano()
	var ping, reap []*conn
	t.mu.Lock()
	for c := range t.conns {
		switch {
		case n-c.lastRead.Load() > int64(t.cfg.PongWait):
			reap = append(reap, c)
		case writeTimedOut(c.writeSince.Load(), n, t.cfg.WriteTimeout):
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
