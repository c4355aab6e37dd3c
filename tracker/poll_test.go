package tracker

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/swarmgate/swarmgate/internal/testlog"
	"github.com/swarmgate/swarmgate/internal/testutil"
)

// TestIdleSocketsHoldNoGoroutine: many sockets announce, then idle; on Linux the tracker holds no goroutine per
// idle socket, and every socket is served again when it speaks.
func TestIdleSocketsHoldNoGoroutine(t *testing.T) {
	url, tr := start(t, Config{})
	const n = 200
	before := runtime.NumGoroutine()
	clients := make([]*websocket.Conn, n)
	for i := range clients {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ws.Close() })
		clients[i] = ws
	}
	announceAll := func() {
		for i, ws := range clients {
			msg, _ := json.Marshal(map[string]any{"action": "announce", "info_hash": idOf(byte(i % 7)),
				"peer_id": ID{byte(i), byte(i >> 8), 1}, "left": i % 2})
			if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
				t.Fatal(err)
			}
		}
		for i, ws := range clients {
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			var m Message
			if err := ws.ReadJSON(&m); err != nil || m.FailureReason != "" || m.Interval == 0 {
				t.Fatalf("socket %d: %+v, %v", i, m, err)
			}
		}
	}
	announceAll()
	if st := tr.Stats(); st.Connections != n || st.Peers != n {
		t.Fatalf("stats %+v", st)
	}
	if runtime.GOOS == "linux" {
		// The test's client goroutines are not reading; the tracker's are the poller and, briefly, the
		// goroutines that served the last messages.
		testutil.Eventually(t, 5*time.Second, "the goroutines to end", func() bool { return runtime.NumGoroutine() <= before+10 })
	}
	announceAll()
}

// TestPingBetweenMessagesIsAnswered: a client's ping gets a pong and marks the socket alive, without gorilla's
// read loop waiting for a message that does not come.
func TestPingBetweenMessagesIsAnswered(t *testing.T) {
	url, tr := start(t, Config{PingInterval: time.Hour, PongWait: 300 * time.Millisecond})
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	pongs := make(chan string, 16)
	ws.SetPongHandler(func(s string) error { pongs <- s; return nil })
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(time.Second) // three PongWaits: the pings keep the socket alive
	for i := 0; time.Now().Before(deadline); i++ {
		if err := ws.WriteControl(websocket.PingMessage, []byte{byte(i), 'x'}, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-pongs:
			if p != string([]byte{byte(i), 'x'}) {
				t.Fatalf("pong %q for ping %d", p, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no pong")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := tr.Stats(); st.Connections != 1 {
		t.Fatalf("pinging socket dropped: %+v", st)
	}
	// Then it falls silent and is dropped.
	testutil.Eventually(t, 5*time.Second, "no connection", func() bool { return tr.Stats().Connections == 0 })
}

// TestSocketClosedUnderTheTrackerIsDropped: a connection closed by someone else (here the listener's owner)
// leaves no peer behind: its peer ID can announce again from a new socket at once, and the sweeper drops it.
func TestSocketClosedUnderTheTrackerIsDropped(t *testing.T) {
	tr := New(Config{Logger: testLogger(t)})
	srv := httptest.NewUnstartedServer(tr)
	ln := &testutil.TrackingListener{Listener: srv.Listener}
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		_ = tr.Close()
		srv.Close()
	})
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	c := dial(t, url)
	announce(t, c, Announce{InfoHash: idOf(1), PeerID: idOf(2), Left: 1})
	ln.CloseAll()
	// The client is back at once, before the sweeper's next look: its peer ID is free.
	c2 := dial(t, url)
	announce(t, c2, Announce{InfoHash: idOf(1), PeerID: idOf(2), Left: 1})
	testutil.Eventually(t, 5*time.Second, "one connection with one peer", func() bool { st := tr.Stats(); return st.Connections == 1 && st.Peers == 1 })
	// And a socket closed under the tracker that never speaks again is dropped by the sweeper.
	c3 := dial(t, url)
	announce(t, c3, Announce{InfoHash: idOf(1), PeerID: idOf(3), Left: 1})
	ln.CloseAll()
	testutil.Eventually(t, 5*time.Second, "no connection and no peer", func() bool { st := tr.Stats(); return st.Connections == 0 && st.Peers == 0 })
}

// TestMessagesInOneWriteAreAllServed: frames that arrive together (read into the buffer at once) are served
// without waiting for more bytes.
func TestMessagesInOneWriteAreAllServed(t *testing.T) {
	url, _ := start(t, Config{})
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	// Build three masked frames by hand and write them in one write.
	var buf []byte
	for i := range 3 {
		msg, _ := json.Marshal(map[string]any{"action": "announce", "info_hash": idOf(byte(i)), "peer_id": idOf(9), "left": 1})
		buf = append(buf, 0x81, 0x80|126, byte(len(msg)>>8), byte(len(msg)), 1, 2, 3, 4)
		for j, b := range msg {
			buf = append(buf, b^byte(1+j%4))
		}
	}
	buf = append(buf, 0x8A, 0x80, 0, 0, 0, 0) // and an empty pong
	if _, err := ws.NetConn().Write(buf); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range 3 {
		var m Message
		if err := ws.ReadJSON(&m); err != nil || m.InfoHash != idOf(byte(i)) || m.FailureReason != "" {
			t.Fatalf("reply %d: %+v %v", i, m, err)
		}
	}
}

func TestCloseStopsThePoller(t *testing.T) {
	tr := New(Config{Logger: testLogger(t)})
	srv := httptest.NewServer(tr)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	c := dial(t, url)
	announce(t, c, Announce{InfoHash: idOf(1), PeerID: idOf(2), Left: 1})
	_ = tr.Close()
	select {
	case _, ok := <-c.Messages():
		for ok {
			_, ok = <-c.Messages()
		}
	case <-time.After(5 * time.Second):
		t.Fatal("socket not closed by Close")
	}
	testutil.Eventually(t, 5*time.Second, "no connection", func() bool { return tr.Stats().Connections == 0 })
	// A second Close is harmless; a socket after Close is refused.
	_ = tr.Close()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil {
		if code := closeCode(t, ws); code != websocket.CloseGoingAway {
			t.Fatalf("close code %d", code)
		}
		ws.Close()
	}
}

func testLogger(t *testing.T) *slog.Logger { return testlog.New(t, slog.LevelDebug) }

var _ http.Handler = (*Tracker)(nil)
