package seeder

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/webrtc/v4"
)

// channelPair connects two in-process pion peers, built from NewAPI as the seeder's are, and returns both
// ends of one detached data channel once it is open.
func channelPair(t *testing.T) (offerer, answerer datachannel.ReadWriteCloserDeadliner) {
	t.Helper()
	api := NewAPI(testLogger(t))
	pc1, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	pc2, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = pc1.GracefulClose()
		_ = pc2.GracefulClose()
	})
	open1 := make(chan datachannel.ReadWriteCloserDeadliner, 1)
	open2 := make(chan datachannel.ReadWriteCloserDeadliner, 1)
	detach := func(dc *webrtc.DataChannel, to chan<- datachannel.ReadWriteCloserDeadliner) {
		dc.OnOpen(func() {
			rwc, err := dc.DetachWithDeadline()
			if err != nil {
				t.Error(err)
				close(to)
				return
			}
			to <- rwc
		})
	}
	dc, err := pc1.CreateDataChannel("test", nil)
	if err != nil {
		t.Fatal(err)
	}
	detach(dc, open1)
	pc2.OnDataChannel(func(dc *webrtc.DataChannel) { detach(dc, open2) })

	complete := func(pc *webrtc.PeerConnection, sd webrtc.SessionDescription) *webrtc.SessionDescription {
		gathered := webrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(sd); err != nil {
			t.Fatal(err)
		}
		<-gathered
		return pc.LocalDescription()
	}
	offer, err := pc1.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc2.SetRemoteDescription(*complete(pc1, offer)); err != nil {
		t.Fatal(err)
	}
	answer, err := pc2.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc1.SetRemoteDescription(*complete(pc2, answer)); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []chan datachannel.ReadWriteCloserDeadliner{open1, open2} {
		select {
		case rwc, ok := <-ch:
			if !ok {
				t.FailNow()
			}
			if ch == open1 {
				offerer = rwc
			} else {
				answerer = rwc
			}
		case <-time.After(10 * time.Second):
			t.Fatal("data channel did not open")
		}
	}
	return offerer, answerer
}

var testAddr = peerAddr{netip.MustParseAddrPort("192.0.2.1:5000")}

func wrap(rwc datachannel.ReadWriteCloserDeadliner, onClose func()) *dcConn {
	return newDCConn(rwc, testAddr, testAddr, new(atomic.Int64), 0, onClose)
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	_, _ = r.Read(b)
	return b
}

// readAll reads n bytes through reads of the given sizes, in turn.
func readAll(t *testing.T, r io.Reader, n int, sizes ...int) []byte {
	t.Helper()
	var out []byte
	for i := 0; len(out) < n; i++ {
		buf := make([]byte, min(sizes[i%len(sizes)], n-len(out)))
		k, err := r.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(out), err)
		}
		out = append(out, buf[:k]...)
	}
	return out
}

// TestConnChunksWrites: a write arrives as messages no larger than the peer receives (its max-message-size),
// 16 KiB when that is not known, and never larger than maxWriteMessage.
func TestConnChunksWrites(t *testing.T) {
	for _, tc := range []struct {
		remoteMax     uint32
		size, largest int
		messages      int
	}{
		{0, 40<<10 + 123, safeWriteMessage, 3},
		{20_000, 40<<10 + 123, 20_000, 3},
		{8_000, 20_000, 8_000, 3},
		{256 << 10, 150 << 10, maxWriteMessage, 3},
	} {
		a, b := channelPair(t)
		w := newDCConn(a, testAddr, testAddr, new(atomic.Int64), tc.remoteMax, nil)
		data := randomBytes(tc.size, 1)
		if n, err := w.Write(data); err != nil || n != len(data) {
			t.Fatalf("Write = %d, %v", n, err)
		}
		if got := w.written.Load(); got != int64(len(data)) {
			t.Fatalf("written counter = %d, want %d", got, len(data))
		}
		var got []byte
		var sizes []int
		buf := make([]byte, 1<<20)
		for len(got) < len(data) {
			n, err := b.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, n)
			got = append(got, buf[:n]...)
		}
		if !bytes.Equal(got, data) {
			t.Fatal("data differs")
		}
		if len(sizes) != tc.messages || slices.Max(sizes) != tc.largest {
			t.Fatalf("remote max %d: message sizes %v, want %d messages of at most %d", tc.remoteMax, sizes, tc.messages, tc.largest)
		}
	}
}

// TestConnBuffersReads: messages read through buffers smaller than a message, as the engine reads (20 bytes,
// then 48, then large), arrive whole and in order; so does a message larger than the initial read buffer.
func TestConnBuffersReads(t *testing.T) {
	a, b := channelPair(t)
	r := wrap(b, nil)
	var want []byte
	for i, size := range []int{68, 16 << 10, 5, 100 << 10, 3 << 10} { // 100 KiB exceeds initialReadBuffer
		msg := randomBytes(size, uint64(i))
		if _, err := a.Write(msg); err != nil { // raw writes: one message each
			t.Fatal(err)
		}
		want = append(want, msg...)
	}
	got := readAll(t, r, len(want), 20, 48, 7, 128<<10, 1, 3000)
	if !bytes.Equal(got, want) {
		t.Fatal("data read through small buffers differs")
	}
	// A buffer at least as large as the read buffer takes a message directly.
	msg := randomBytes(1000, 9)
	if _, err := a.Write(msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	n, err := r.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], msg) {
		t.Fatalf("direct read = %d, %v", n, err)
	}
}

// TestConnDeadlines: a read deadline ends a blocked Read with a timeout and can be lifted again; a past
// write deadline fails Write; the setters never fail, even after Close.
func TestConnDeadlines(t *testing.T) {
	a, b := channelPair(t)
	r, w := wrap(b, nil), wrap(a, nil)

	start := time.Now()
	if err := r.SetReadDeadline(start.Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := r.Read(make([]byte, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past deadline: %v", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("deadline error is not a net.Error timeout: %v", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond || d > 5*time.Second {
		t.Fatalf("Read returned after %v", d)
	}
	if err := r.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, r, 5, 10); string(got) != "hello" {
		t.Fatalf("read %q after lifting the deadline", got)
	}

	if err := w.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("late")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write past deadline: %v", err)
	}
	if err := w.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("ok")); err != nil {
		t.Fatalf("Write after lifting the deadline: %v", err)
	}

	for _, c := range []*dcConn{r, w} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if c.SetDeadline(time.Now()) != nil || c.SetReadDeadline(time.Now()) != nil || c.SetWriteDeadline(time.Now()) != nil {
			t.Fatal("a deadline setter failed after Close")
		}
	}
}

// TestConnFlowControl: Write waits while too much is queued for a peer that does not read, until the write
// deadline passes; once the peer reads, everything arrives.
func TestConnFlowControl(t *testing.T) {
	a, b := channelPair(t)
	w, r := wrap(a, nil), wrap(b, nil)
	data := randomBytes(4<<20, 3) // more than the receiver's SCTP window (1 MiB) and bufferedHigh together
	_ = w.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	n, err := w.Write(data)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write of 4 MiB to a peer that does not read = %d, %v; want a deadline error", n, err)
	}
	if n >= len(data) || n < bufferedHigh {
		t.Fatalf("wrote %d bytes before blocking, want between %d and %d", n, bufferedHigh, len(data))
	}
	_ = w.SetWriteDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := w.Write(data[n:])
		done <- err
	}()
	got := readAll(t, r, len(data), 100<<10)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data differs")
	}
}

// TestConnClose: Close calls onClose once, unblocks a pending Read and fails later reads and writes.
func TestConnClose(t *testing.T) {
	a, _ := channelPair(t)
	var closes atomic.Int32
	c := wrap(a, func() { closes.Add(1) })
	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 10))
		readErr <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the Read block (it must return either way)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("Read after Close succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if n := closes.Load(); n != 1 {
		t.Fatalf("onClose called %d times", n)
	}
	if c.RemoteAddr().String() != "192.0.2.1:5000" || c.RemoteAddr().Network() != network {
		t.Fatalf("RemoteAddr = %v", c.RemoteAddr())
	}
}
