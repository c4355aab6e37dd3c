// Package uplink shapes what one machine sends to a token-bucket rate, as the machine's network uplink
// would: connections accepted through its listeners wait for tokens before each write, and the BitTorrent
// engine's upload limiter draws from the same bucket. An operator uses it to leave room for other services
// on a shared link; the flash-crowd benchmark uses it to give a site's machine the uplink a real one has.
package uplink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Burst is the bucket's depth. It is at least a BitTorrent block (16 KiB), which the engine's limiter must
// grant in one piece, and deep enough (100 ms at 20 Mbit/s) that writers woken late on a busy machine find
// the tokens that accrued meanwhile instead of losing them to a full bucket.
const Burst = 256 << 10

// chunk is the most one write takes from the bucket at once: a BitTorrent block, so that HTTP writes and the
// engine's blocks compete on equal terms.
const chunk = 16 << 10

// maxPoll bounds how long a waiting write sleeps before it asks the bucket again.
const maxPoll = 20 * time.Millisecond

// Uplink is one machine's shared send capacity.
type Uplink struct {
	lim  *rate.Limiter
	mu   sync.Mutex // serializes take's use of lim
	sent atomic.Int64
}

// New returns an uplink that sends bytesPerSecond on average.
func New(bytesPerSecond float64) (*Uplink, error) {
	if !(bytesPerSecond > 0) {
		return nil, fmt.Errorf("uplink: rate %v bytes/s is not positive", bytesPerSecond)
	}
	return &Uplink{lim: rate.NewLimiter(rate.Limit(bytesPerSecond), Burst)}, nil
}

// Rate is the uplink's rate in bytes per second.
func (u *Uplink) Rate() float64 { return float64(u.lim.Limit()) }

// Limiter is the token bucket, for the BitTorrent engine's upload limiter. Bytes it grants there are not
// counted in Sent.
func (u *Uplink) Limiter() *rate.Limiter { return u.lim }

// Sent is the number of bytes written so far on connections accepted through the uplink's listeners.
func (u *Uplink) Sent() int64 { return u.sent.Load() }

// Listener returns ln with every accepted connection's writes shaped by the uplink.
func (u *Uplink) Listener(ln net.Listener) net.Listener { return listener{ln, u} }

type listener struct {
	net.Listener
	u *Uplink
}

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{Conn: c, u: l.u, ctx: ctx, cancel: cancel}, nil
}

type conn struct {
	net.Conn
	u      *Uplink
	ctx    context.Context // ends at Close, releasing a write that waits for tokens
	cancel context.CancelFunc
}

func (c *conn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), chunk)
		if err := c.u.take(c.ctx, n); err != nil {
			return written, net.ErrClosed
		}
		m, err := c.Conn.Write(p[:n])
		written += m
		c.u.sent.Add(int64(m))
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// take waits until the bucket holds n tokens and takes them. It asks exactly the way the BitTorrent engine
// does (a reservation, cancelled when it would have to wait), so that both get their share: a queue of HTTP
// reservations would hold the bucket in debt for good and starve the engine, which never queues, and asking
// without reserving (AllowN) loses nearly every race to HTTP writes too. Calls are serialized and read the
// clock under the lock: rate.Limiter credits an interval twice when the times it is given go backwards,
// which concurrent callers on a busy machine do all the time.
func (u *Uplink) take(ctx context.Context, n int) error {
	for {
		u.mu.Lock()
		now := time.Now()
		r := u.lim.ReserveN(now, n)
		wait := r.DelayFrom(now)
		if wait == 0 {
			u.mu.Unlock()
			return nil
		}
		r.CancelAt(time.Now())
		u.mu.Unlock()
		t := time.NewTimer(min(wait, maxPoll))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (c *conn) Close() error {
	c.cancel()
	return c.Conn.Close()
}

// ParseRate reads a rate such as "20Mbit", "2.5MB", "800kbit" or "1000000" (bytes) per second, in decimal
// units (k = 1000), and returns bytes per second.
func ParseRate(s string) (float64, error) {
	t := strings.TrimSuffix(strings.TrimSpace(s), "/s")
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || !(v > 0) {
		return 0, fmt.Errorf("uplink: rate %q: want a positive number with a unit such as 20Mbit or 2.5MB", s)
	}
	scale := map[string]float64{
		"": 1, "B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9,
		"bit": 1.0 / 8, "kbit": 1e3 / 8, "Kbit": 1e3 / 8, "Mbit": 1e6 / 8, "Gbit": 1e9 / 8,
	}
	f, ok := scale[unit]
	if !ok {
		return 0, errors.New("uplink: rate " + strconv.Quote(s) + ": unknown unit " + strconv.Quote(unit) +
			" (use B, kB, MB, GB, bit, kbit, Mbit or Gbit)")
	}
	return v * f, nil
}
