// Package uplink shapes what one machine sends to a token-bucket rate, as the machine's network uplink
// would: connections accepted through its listeners, and any connection given to Conn (the BitTorrent
// engine's peer connections), wait for tokens before each write. Writes to addresses it is told to favour
// (SetPriority: a site's cooperating servers while they fetch what they will serve) go first, and so do, up to
// PreferredShare of the rate, responses a server marks (Prefer: what a page waits on). An operator uses
// it to leave room for other services on a shared link; the flash-crowd benchmark uses it to give a site's
// machine the uplink a real one has.
package uplink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Burst is the bucket's depth. It is at least a write's chunk (16 KiB), and deep enough (100 ms at 20 Mbit/s)
// that writers woken late on a busy machine find the tokens that accrued meanwhile instead of losing them to
// a full bucket.
const Burst = 256 << 10

// chunk is the most one write takes from the bucket at once: a BitTorrent block, so that HTTP writes and the
// engine's pieces compete on equal terms.
const chunk = 16 << 10

// maxPoll bounds how long a waiting write sleeps before it asks the bucket again.
const maxPoll = 20 * time.Millisecond

// Uplink is one machine's shared send capacity.
type Uplink struct {
	lim      *rate.Limiter
	pref     *rate.Limiter // PreferredShare of lim's rate: what preferred writes may take first
	mu       sync.Mutex    // serializes take's use of lim and pref
	sent     atomic.Int64
	byRemote sync.Map // netip.Addr → *atomic.Int64: what Sent holds, by remote address
	priority atomic.Pointer[func(netip.Addr) bool]
}

// New returns an uplink that sends bytesPerSecond on average.
func New(bytesPerSecond float64) (*Uplink, error) {
	if err := checkRate(bytesPerSecond); err != nil {
		return nil, err
	}
	return &Uplink{lim: rate.NewLimiter(rate.Limit(bytesPerSecond), Burst),
		pref: rate.NewLimiter(rate.Limit(PreferredShare*bytesPerSecond), Burst)}, nil
}

// PreferredShare bounds what preferred writes (Prefer) take ahead of the rest: past it they wait like any
// other, so a client that marks every request cannot starve the others, which keep about half. Half the link
// sends a page's 50 KB of scripts in a few hundred milliseconds even at 1 MB/s.
const PreferredShare = 0.5

func checkRate(bytesPerSecond float64) error {
	if !(bytesPerSecond > 0) {
		return fmt.Errorf("uplink: rate %v bytes/s is not positive", bytesPerSecond)
	}
	return nil
}

// Rate is the uplink's rate in bytes per second.
func (u *Uplink) Rate() float64 { return float64(u.lim.Limit()) }

// SetRate changes the uplink's rate from now on: writes already waiting take their tokens at the new rate.
func (u *Uplink) SetRate(bytesPerSecond float64) error {
	if err := checkRate(bytesPerSecond); err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lim.SetLimit(rate.Limit(bytesPerSecond))
	u.pref.SetLimit(rate.Limit(PreferredShare * bytesPerSecond))
	return nil
}

// Sent is the number of bytes written so far on the uplink's connections.
func (u *Uplink) Sent() int64 { return u.sent.Load() }

// SentTo is the part of Sent written to connections whose remote address is a (the zero Addr: connections
// without one).
func (u *Uplink) SentTo(a netip.Addr) int64 {
	if n, ok := u.byRemote.Load(a); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

// SetPriority makes writes to the remote addresses f names go before all others, from their next write on:
// while they have bytes to send, other connections send nothing. f is called for every write of up to 16 KiB,
// concurrently, and must be quick. Nil removes it.
func (u *Uplink) SetPriority(f func(remote netip.Addr) bool) {
	if f == nil {
		u.priority.Store(nil)
		return
	}
	u.priority.Store(&f)
}

func (u *Uplink) favours(a netip.Addr) bool {
	f := u.priority.Load()
	return f != nil && a.IsValid() && (*f)(a)
}

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
	return l.u.Conn(c), nil
}

// Conn returns c with its writes shaped by the uplink and counted in Sent. Closing it releases a write that
// waits for tokens.
func (u *Uplink) Conn(c net.Conn) net.Conn {
	ctx, cancel := context.WithCancel(context.Background())
	remote := remoteAddr(c)
	n, _ := u.byRemote.LoadOrStore(remote, new(atomic.Int64))
	return &conn{Conn: c, u: u, remote: remote, sentTo: n.(*atomic.Int64), ctx: ctx, cancel: cancel}
}

// remoteAddr is c's remote IP address, or the zero Addr when it has none (a pipe, a WebRTC data channel
// without an address).
func remoteAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(interface{ AddrPort() netip.AddrPort }); ok { // TCP, UDP, the seeder's data channels
		return a.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

type conn struct {
	net.Conn
	u       *Uplink
	remote  netip.Addr
	sentTo  *atomic.Int64   // the uplink's count for remote
	ctx     context.Context // ends at Close, releasing a write that waits for tokens
	cancel  context.CancelFunc
	prefers atomic.Int64 // bytes still to go first (Prefer)
	dmu     sync.Mutex
	wd      time.Time // the write deadline last set, moved on by the time writes waited for tokens
}

// SetWriteDeadline sets the connection's write deadline, which Write then moves on by the time it waits for
// tokens: a deadline bounds how long the peer takes to take the bytes, and the time this machine's own uplink
// holds them back is not the peer's. A server that cuts its slow writes (the gateway gives each chunk of a
// response a deadline) would otherwise cut the very downloads its uplink starves while it favours others,
// and a visitor who came before a crowd was left with a broken image.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.wd = t
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines; the write deadline is kept as SetWriteDeadline's is.
func (c *conn) SetDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.wd = t
	return c.Conn.SetDeadline(t)
}

// postpone moves a write deadline that is set on by d, the time a write waited for tokens.
func (c *conn) postpone(d time.Duration) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.wd.IsZero() || d <= 0 {
		return
	}
	c.wd = c.wd.Add(d)
	_ = c.Conn.SetWriteDeadline(c.wd)
}

type connKey struct{}

// ConnContext is for http.Server.ConnContext: it puts the uplink's connection under c (c itself, or one
// that a TLS connection wraps) in the context of c's requests, for Prefer.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	for {
		if uc, ok := c.(*conn); ok {
			return context.WithValue(ctx, connKey{}, uc)
		}
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return ctx
		}
		c = w.NetConn()
	}
}

// Prefer makes the next n bytes written on the connection of the request whose context ctx is go first, as
// writes to favoured addresses do, within PreferredShare of the rate (0: none; it replaces what an earlier
// request of the connection was given; HTTP/2 streams share a connection, and a response there should not
// call it). It is for what a visitor's page waits on before anything else can move (the page, the scripts
// that start it), which would otherwise queue behind every bulk transfer on the link. A context without a
// connection of an uplink (see ConnContext) is ignored.
func Prefer(ctx context.Context, n int64) {
	if c, ok := ctx.Value(connKey{}).(*conn); ok {
		c.prefers.Store(max(n, 0))
	}
}

func (c *conn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), chunk)
		preferred := c.prefers.Load() > 0 && c.u.allowPreferred(n)
		start := time.Now()
		if err := c.u.take(c.ctx, n, preferred || c.u.favours(c.remote)); err != nil {
			return written, net.ErrClosed
		}
		c.postpone(time.Since(start))
		m, err := c.Conn.Write(p[:n])
		written += m
		c.u.sent.Add(int64(m))
		c.sentTo.Add(int64(m))
		if c.prefers.Load() > 0 {
			c.prefers.Add(-int64(m)) // a concurrent Prefer for the next request may land first: both are fine
		}
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// allowPreferred says whether a preferred write of n bytes is within PreferredShare, and counts it.
func (u *Uplink) allowPreferred(n int) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.pref.AllowN(time.Now(), n)
}

// take waits until the bucket holds n tokens and takes them.
//
// An ordinary write asks for a reservation and cancels it when it would have to wait, then asks again: a
// queue of reservations would hold the bucket in debt, and whoever queues first would starve the rest. A
// favoured write does exactly that on purpose: it reserves and waits its turn, so that while favoured
// connections have bytes to send the bucket stays in debt to them and ordinary writes find no tokens.
//
// Calls are serialized and read the clock under the lock: rate.Limiter credits an interval twice when the
// times it is given go backwards, which concurrent callers on a busy machine do all the time.
func (u *Uplink) take(ctx context.Context, n int, favoured bool) error {
	for {
		u.mu.Lock()
		now := time.Now()
		r := u.lim.ReserveN(now, n)
		wait := r.DelayFrom(now)
		if wait == 0 {
			u.mu.Unlock()
			return nil
		}
		if favoured {
			u.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				u.mu.Lock()
				r.CancelAt(time.Now())
				u.mu.Unlock()
				return ctx.Err()
			case <-t.C:
				return nil
			}
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
