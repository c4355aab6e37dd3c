package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/swarmapi"
	"github.com/swarmgate/swarmgate/tracker"
)

// dialFrom opens a TCP connection to addr from the loopback host ip.
func dialFrom(t *testing.T, ip string, addr net.Addr) net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// served sends a request on c and reports whether an answer came (false: the server closed the connection).
func served(t *testing.T, c net.Conn, br *bufio.Reader) bool {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET "+swarmapi.PathManifest+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("neither served nor closed")
		}
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return true
}

// closedByServer waits (at most 10 s) for the server to close c, and reports whether it did.
func closedByServer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestConnectionsPerAddressAreCapped: one address holds at most MaxConnsPerClient connections; others are
// unaffected, a closed connection gives its place back, and trusted proxies are exempt.
func TestConnectionsPerAddressAreCapped(t *testing.T) {
	g := startGateway(t, Config{Clients: ClientConfig{MaxConnsPerClient: 3, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.4.9/32")}}})
	var held []net.Conn
	for range 3 {
		c := dialFrom(t, "127.0.4.1", g.Addr())
		if !served(t, c, bufio.NewReader(c)) {
			t.Fatal("a connection within the cap was refused")
		}
		held = append(held, c)
	}
	c := dialFrom(t, "127.0.4.1", g.Addr())
	if served(t, c, bufio.NewReader(c)) {
		t.Fatal("a fourth connection from one address was served")
	}
	if c := dialFrom(t, "127.0.4.2", g.Addr()); !served(t, c, bufio.NewReader(c)) {
		t.Fatal("another address was refused")
	}
	for range 5 {
		if c := dialFrom(t, "127.0.4.9", g.Addr()); !served(t, c, bufio.NewReader(c)) {
			t.Fatal("a trusted proxy was capped")
		}
	}
	held[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := dialFrom(t, "127.0.4.1", g.Addr())
		if served(t, c, bufio.NewReader(c)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed connection did not give its place back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStalledClientsAreCutOff: a request body that stops arriving, and a kept-alive connection that asks
// nothing more, are closed by the server; responses that take longer than the timeout but keep moving
// (a slow download, the dashboard's status stream, a tracker socket) live on.
func TestStalledClientsAreCutOff(t *testing.T) {
	const timeout = 300 * time.Millisecond
	o := newOrigin(t)
	o.mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) })
	o.mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for i := range 8 { // 8 × 100 ms: more than twice the timeout in all
			fmt.Fprintf(w, "chunk %d\n", i)
			_ = rc.Flush()
			time.Sleep(100 * time.Millisecond)
		}
	})
	g := startGateway(t, Config{
		Site:    SiteConfig{Origin: mustURL(o.URL)},
		Clients: ClientConfig{ProgressTimeout: timeout, IdleTimeout: timeout},
	})

	c := dialFrom(t, "127.0.0.1", g.Addr())
	_, _ = io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
	if !closedByServer(c) {
		t.Fatal("a stalled request body held its connection")
	}
	c = dialFrom(t, "127.0.0.1", g.Addr())
	if br := bufio.NewReader(c); !served(t, c, br) || !closedByServer(c) {
		t.Fatal("an idle kept-alive connection was not closed")
	}

	resp, body := get(t, g.url("/slow"))
	if resp.StatusCode != 200 || strings.Count(string(body), "chunk") != 8 {
		t.Fatalf("slow download: %d %q", resp.StatusCode, body)
	}
	stream, err := http.Get(g.url(swarmapi.PathStatusStream))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	sc := bufio.NewScanner(stream.Body)
	for events := 0; events < 3; { // a snapshot a second: the stream outlives the timeout several times
		if !sc.Scan() {
			t.Fatalf("status stream ended after %d events: %v", events, sc.Err())
		}
		if strings.HasPrefix(sc.Text(), "data: ") {
			events++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, err := tracker.Dial(ctx, "ws://"+g.Addr().String()+swarmapi.PathAnnounce, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	<-time.After(3 * timeout) // let the socket sit idle past the timeout
	if err := ws.Scrape(); err != nil {
		t.Fatal(err)
	}
	select {
	case m, ok := <-ws.Messages():
		if !ok || m.Action != tracker.ActionScrape {
			t.Fatalf("tracker socket after idling: %+v %v", m, ws.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no scrape reply")
	}
}

// TestTrackerCapsFollowTheResolvedClient: behind a trusted proxy the tracker's caps count the client the
// proxy names, not the proxy.
func TestTrackerCapsFollowTheResolvedClient(t *testing.T) {
	g := startGateway(t, Config{Clients: ClientConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
		Tracker: tracker.Config{MaxSocketsPerClient: 1}})
	dialAs := func(client string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := tracker.Dial(ctx, "ws://"+g.Addr().String()+swarmapi.PathAnnounce, http.Header{"X-Forwarded-For": {client}})
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return err
	}
	if err := dialAs("198.51.100.1"); err != nil {
		t.Fatal(err)
	}
	if err := dialAs("198.51.100.1"); err == nil {
		t.Fatal("a second socket of one client behind the proxy was accepted")
	}
	if err := dialAs("198.51.100.2"); err != nil {
		t.Fatal("another client behind the same proxy was refused:", err)
	}
}
