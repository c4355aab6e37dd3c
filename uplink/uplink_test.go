package uplink

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{
		"20Mbit": 2.5e6, "2.5MB": 2.5e6, "800kbit": 1e5, "1000000": 1e6, "1Gbit/s": 1.25e8, "64 kB": 64e3,
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1Mbit", "fast", "20Mbps", "1.2.3MB"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
}

// TestListenerShapesWrites sends through a shaped listener on loopback and checks the bytes arrive whole,
// are counted, and take at least as long as the bucket allows (a lower bound only: never flaky on a busy
// machine).
func TestListenerShapesWrites(t *testing.T) {
	const rate, size = 1 << 20, 1 << 20 // 1 MiB/s, 1 MiB: at least (size-Burst)/rate
	u, err := New(rate)
	if err != nil {
		t.Fatal(err)
	}
	sl := listen(t, u)
	defer sl.Close()
	done := make(chan error, 1)
	go func() {
		c, err := sl.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = c.Write(make([]byte, size))
		done <- err
	}()
	c, err := net.Dial("tcp", sl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	n, err := io.Copy(io.Discard, c)
	took := time.Since(start)
	if err != nil || n != size {
		t.Fatalf("read %d bytes, %v; want %d", n, err, size)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Less a little: the server may have begun writing before the client started its clock.
	if min := time.Duration(float64(size-Burst)/rate*float64(time.Second)) - 50*time.Millisecond; took < min {
		t.Errorf("%d bytes took %v at %d B/s; the bucket allows no less than %v", size, took, rate, min)
	}
	if u.Sent() != size {
		t.Errorf("Sent = %d, want %d", u.Sent(), size)
	}
	client := netip.MustParseAddrPort(c.LocalAddr().String()).Addr()
	if got := u.SentTo(client); got != size {
		t.Errorf("SentTo(%v) = %d, want %d", client, got, size)
	}
	if got := u.SentTo(client.Next()); got != 0 {
		t.Errorf("SentTo(%v) = %d, want 0", client.Next(), got)
	}
}

// TestCloseReleasesAWaitingWrite: a write queued behind a slow bucket returns once its connection closes.
func TestCloseReleasesAWaitingWrite(t *testing.T) {
	u, err := New(1000) // 1 kB/s: a 1 MiB write would take 17 minutes
	if err != nil {
		t.Fatal(err)
	}
	c := acceptReader(t, u)
	done := make(chan error, 1)
	go func() { _, err := c.Write(make([]byte, 1<<20)); done <- err }()
	time.Sleep(100 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("write to a closed connection succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("write still waiting after Close")
	}
}

// TestDeadlineLeavesOutTheWaitForTokens: a write deadline bounds the peer's time, not the time the uplink
// holds the bytes back: a write that waits for tokens well past its deadline, to a peer that reads at once,
// succeeds. A peer that takes nothing still misses its deadline.
func TestDeadlineLeavesOutTheWaitForTokens(t *testing.T) {
	const rate = 128 << 10 // 128 KiB/s: after the bucket's burst, 64 KiB wait 0.5 s for tokens
	u, err := New(rate)
	if err != nil {
		t.Fatal(err)
	}
	c := acceptReader(t, u)
	defer c.Close()
	if _, err := c.Write(make([]byte, Burst)); err != nil { // empties the bucket
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.SetWriteDeadline(start.Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, 64<<10)); err != nil {
		t.Fatalf("a write that waited %v for tokens, against a deadline of 100 ms: %v", time.Since(start), err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("64 KiB after the burst took %v; the bucket should have held them back", took)
	}

	// A peer that reads nothing: once the socket's buffers are full, the deadline ends the write.
	u2, err := New(1 << 30)
	if err != nil {
		t.Fatal(err)
	}
	sl2 := listen(t, u2)
	defer sl2.Close()
	peer, err := net.Dial("tcp", sl2.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c2, err := sl2.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.SetWriteDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := c2.Write(make([]byte, 64<<20)); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a write to a peer that reads nothing: %v, want the deadline exceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write to a peer that reads nothing still going 10 s after its deadline")
	}
}

// TestFavouredGoFirst: while a favoured connection has bytes to send it takes nearly all of the uplink from
// four ordinary ones; once it is no longer favoured, they are not starved.
func TestFavouredGoFirst(t *testing.T) {
	const rate = 2 << 20
	u, err := New(rate)
	if err != nil {
		t.Fatal(err)
	}
	fav := netip.MustParseAddr("127.0.0.2")
	var favour atomic.Bool
	favour.Store(true)
	u.SetPriority(func(a netip.Addr) bool { return favour.Load() && a == fav })
	ordinary, stopOrdinary := streamsFrom(t, u, "127.0.0.1", 4)
	favoured, stopFavoured := streamsFrom(t, u, fav.String(), 1)
	defer stopOrdinary()
	defer stopFavoured()
	time.Sleep(1500 * time.Millisecond)
	f, o := favoured.Load(), ordinary.Load()
	share := float64(f) / float64(f+o)
	t.Logf("favoured %d bytes, four ordinary %d bytes: favoured share %.2f", f, o, share)
	// A fair share would be 0.2. Only a busy machine's late wake-ups leave the ordinary ones any tokens.
	if share < 0.5 {
		t.Errorf("the favoured connection got %.0f%% of the uplink beside four ordinary ones", 100*share)
	}
	favour.Store(false)
	time.Sleep(100 * time.Millisecond)
	before := ordinary.Load()
	time.Sleep(time.Second)
	if got := ordinary.Load() - before; got < 64<<10 {
		t.Errorf("once nothing is favoured, four ordinary connections got %d bytes in a second at %d B/s", got, rate)
	}
}

// TestNeverExceedsTheRate: however many connections write at once, the uplink sends no more than its rate
// allows over the time taken, plus one bucket. (An upper bound: a busy machine only sends less.)
func TestNeverExceedsTheRate(t *testing.T) {
	const rate = 1 << 20
	start := time.Now() // before the bucket exists: every byte counts
	u, err := New(rate)
	if err != nil {
		t.Fatal(err)
	}
	const writers = 24
	stop := streams(t, u, writers)
	time.Sleep(2 * time.Second)
	sent, took := u.Sent(), time.Since(start)
	stop()
	if limit := int64(rate*took.Seconds()) + Burst; sent > limit {
		t.Errorf("%d writers sent %d bytes in %v; the uplink allows %d", writers, sent, took, limit)
	}
	t.Logf("%d writers: %.0f bytes/s at a rate of %d", writers, float64(sent)/took.Seconds(), rate)
}

// streams opens n connections through the uplink's listener on loopback, each written to as fast as the
// uplink lets it and read by a client that never waits, until stop is called (which waits for them all).
func streams(t *testing.T, u *Uplink, n int) (stop func()) {
	_, stop = streamsFrom(t, u, "127.0.0.1", n)
	return stop
}

// streamsFrom is streams with the clients dialing from the address from; read counts what they all read.
func streamsFrom(t *testing.T, u *Uplink, from string, n int) (read *atomic.Int64, stop func()) {
	t.Helper()
	sl := listen(t, u)
	done := make(chan struct{})
	var wg sync.WaitGroup
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			sl.Close()
			wg.Wait()
		})
	}
	read = new(atomic.Int64)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	for range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			c, err := d.Dial("tcp", sl.Addr().String())
			if err != nil {
				return
			}
			defer c.Close()
			buf := make([]byte, 64<<10)
			for {
				m, err := c.Read(buf)
				read.Add(int64(m))
				if err != nil {
					return
				}
			}
		}()
		c, err := sl.Accept()
		if err != nil {
			stop()
			t.Fatal(err)
		}
		go func() {
			defer wg.Done()
			defer c.Close()
			buf := make([]byte, 128<<10)
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
	}
	return read, stop
}

// listen opens a loopback listener whose connections the uplink shapes.
// acceptReader returns the server's end of a connection through u whose client reads everything sent until
// the server's end closes; the listener closes when the test ends.
func acceptReader(t *testing.T, u *Uplink) net.Conn {
	t.Helper()
	sl := listen(t, u)
	t.Cleanup(func() { sl.Close() })
	go func() {
		if c, err := net.Dial("tcp", sl.Addr().String()); err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	c, err := sl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func listen(t *testing.T, u *Uplink) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return u.Listener(ln)
}

// TestSetRateSlowsWrites: a new rate holds from the moment it is set, for writes already under way too; a rate
// that is not positive is refused.
func TestSetRateSlowsWrites(t *testing.T) {
	u, err := New(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	stop := streams(t, u, 4)
	defer stop()
	time.Sleep(300 * time.Millisecond)
	const slow = 256 << 10
	if err := u.SetRate(slow); err != nil {
		t.Fatal(err)
	}
	if u.Rate() != slow {
		t.Errorf("Rate = %v after SetRate(%d)", u.Rate(), slow)
	}
	before, start := u.Sent(), time.Now()
	time.Sleep(1500 * time.Millisecond)
	sent, took := u.Sent()-before, time.Since(start)
	// The bucket's depth, and a chunk per writer already granted at the old rate.
	if limit := int64(slow*took.Seconds()) + Burst + 4*chunk; sent > limit {
		t.Errorf("sent %d bytes in the %v after the rate fell to %d B/s; the uplink allows %d", sent, took, slow, limit)
	}
	for _, bad := range []float64{0, -1} {
		if err := u.SetRate(bad); err == nil {
			t.Errorf("SetRate(%v) accepted", bad)
		}
	}
	if u.Rate() != slow {
		t.Errorf("Rate = %v after refused rates, want %d", u.Rate(), slow)
	}
}

// TestPreferredResponsesGoFirst drives Prefer as a server does: an HTTP server on the uplink's listener, with
// ConnContext, marks one response's first bytes. While four ordinary connections keep the uplink full, those
// bytes take about PreferredShare of it; past them, the response is ordinary again and gets no more than a fair
// share.
func TestPreferredResponsesGoFirst(t *testing.T) {
	const rate = 2 << 20
	const preferred = 512 << 10
	u, err := New(rate)
	if err != nil {
		t.Fatal(err)
	}
	ordinary, stopOrdinary := streamsFrom(t, u, "127.0.0.1", 4)
	defer stopOrdinary()

	res := preferring(t, u, preferred)
	during := readBeside(t, res, preferred-(64<<10), ordinary) // less the header and buffers
	t.Logf("while the response's first %d KiB went, four ordinary connections got %d KiB", preferred>>10, during>>10)
	// A fair share would give them four times the response's bytes; PreferredShare leaves them as many.
	if during > preferred*3/2 {
		t.Errorf("four ordinary connections got %d bytes while a preferred response sent %d", during, preferred)
	}
	// Past its preferred bytes the response competes on equal terms: about a fifth of the uplink (preferred, it
	// would take PreferredShare or more).
	readBeside(t, res, 512<<10, ordinary) // what was preferred but buffered (socket buffers)
	const n = 1 << 20
	o := readBeside(t, res, n, ordinary)
	share := float64(n) / float64(n+o)
	t.Logf("then: the response %d KiB, the ordinary ones %d KiB: share %.2f", n>>10, o>>10, share)
	if share > 0.45 {
		t.Errorf("past its preferred bytes the response still got %.0f%% of the uplink beside four ordinary connections", 100*share)
	}
}

// TestPreferredCannotStarveTheRest: a connection whose every byte is preferred (a client that marks all its
// requests) takes about PreferredShare of the uplink, not all of it.
func TestPreferredCannotStarveTheRest(t *testing.T) {
	const rate = 2 << 20
	u, err := New(rate)
	if err != nil {
		t.Fatal(err)
	}
	ordinary, stopOrdinary := streamsFrom(t, u, "127.0.0.1", 4)
	defer stopOrdinary()
	res := preferring(t, u, 1<<62)
	readBeside(t, res, 256<<10, ordinary) // past the first bucket
	const n = 2 << 20
	o := readBeside(t, res, n, ordinary)
	share := float64(o) / float64(n+o)
	t.Logf("a wholly preferred response %d KiB, four ordinary connections %d KiB: their share %.2f", n>>10, o>>10, share)
	// 1 - PreferredShare is 0.5; a busy machine's late wake-ups cost the pollers some. Strictly first, as
	// favoured writes go, they would get under a tenth (TestFavouredGoFirst).
	if share < 0.25 {
		t.Errorf("four ordinary connections got %.0f%% of the uplink beside a wholly preferred one", 100*share)
	}
}

// readBeside reads n bytes of res's body and returns what the ordinary connections (streamsFrom's count) got
// meanwhile.
func readBeside(t *testing.T, res *http.Response, n int64, ordinary *atomic.Int64) int64 {
	t.Helper()
	start := ordinary.Load()
	if _, err := io.CopyN(io.Discard, res.Body, n); err != nil {
		t.Fatal(err)
	}
	return ordinary.Load() - start
}

// preferring starts an HTTP server on u's listener, as a gateway runs one (ConnContext), whose one response
// is endless and has its first n bytes preferred, and returns that response.
func preferring(t *testing.T, u *Uplink, n int64) *http.Response {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		ConnContext: ConnContext,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			Prefer(r.Context(), n)
			buf := make([]byte, 32<<10)
			for r.Context().Err() == nil {
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		}),
	}
	go func() { _ = srv.Serve(u.Listener(ln)) }()
	res, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		res.Body.Close()
		srv.Close()
	})
	return res
}
