package firstview

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/swarmgate/swarmgate/swarmapi"
)

// TestEngineNet checks that the server-side emulation reaches the engine's paths and nothing else: a page's
// own request passes straight through, a webseed response waits the latency and is paced at the rate, and a
// tracker WebSocket's handshake and messages come a latency late. It asserts lower bounds only, which pacing
// guarantees however busy the machine is.
func TestEngineNet(t *testing.T) {
	const latency = 300 * time.Millisecond
	body := bytes.Repeat([]byte("x"), 64<<10)
	upgrader := websocket.Upgrader{}
	var paced atomic.Int32
	gateway := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(*pacedWriter); ok {
			paced.Add(1)
		}
		switch {
		case r.URL.Path == swarmapi.PathAnnounce:
			c, err := upgrader.Upgrade(w, r, nil)
			if err != nil {
				t.Errorf("upgrade: %v", err)
				return
			}
			defer c.Close()
			for {
				typ, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				if err := c.WriteMessage(typ, msg); err != nil {
					return
				}
			}
		default:
			_, _ = w.Write(body)
		}
	})
	// 256 kbit/s: 32 KB/s, so the 64 KiB body takes at least (64 KiB - one chunk of burst) / 32 KB/s ≈ 1.5 s.
	addr, requests, stop, err := serveEngineNet(gateway, Network{Name: "test", Latency: latency, Download: 256e3})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) time.Duration {
		t.Helper()
		start := time.Now()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("GET %s: %d bytes, %v", path, len(got), err)
		}
		return time.Since(start)
	}

	get("/page.html")
	if paced.Load() != 0 {
		t.Errorf("a page's own request went through the pacing writer")
	}
	if d, least := get(swarmapi.PathSeed+"v1/hero.png"), latency+1400*time.Millisecond; d < least {
		t.Errorf("webseed GET of 64 KiB took %v, want at least %v (latency plus the rate)", d, least)
	}
	if n := paced.Load(); n != 1 {
		t.Errorf("%d webseed requests paced, want 1", n)
	}

	start := time.Now()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+swarmapi.PathAnnounce, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The handshake's answer comes a latency late.
	if d := time.Since(start); d < latency {
		t.Errorf("WebSocket handshake took %v, want at least %v", d, latency)
	}
	start = time.Now()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"announce"}`)); err != nil {
		t.Fatal(err)
	}
	_, msg, err := ws.ReadMessage()
	if err != nil || !strings.Contains(string(msg), "announce") {
		t.Fatalf("echo: %q, %v", msg, err)
	}
	if d := time.Since(start); d < latency {
		t.Errorf("a tracker message came back after %v, want at least %v", d, latency)
	}
	ws.Close()
	stop()
	if n := requests(); n != 2 {
		t.Errorf("%d requests emulated, want 2 (the webseed GET and the WebSocket)", n)
	}
}
