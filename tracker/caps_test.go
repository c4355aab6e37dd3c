package tracker

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testutil"
)

// TestSocketsPerClientAreCapped: one client may hold MaxSocketsPerClient sockets; the next is refused
// before the upgrade, another client is not affected, and a closed socket gives its place back. The client
// is whoever Config.Client names (here a header, as a gateway behind a trusted proxy would resolve it).
func TestSocketsPerClientAreCapped(t *testing.T) {
	url, tr := start(t, Config{MaxSocketsPerClient: 2, Client: func(r *http.Request) netip.Addr {
		a, _ := netip.ParseAddr(r.Header.Get("X-Test-Client"))
		return a
	}})
	from := func(client string) (*Client, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := Dial(ctx, url, http.Header{"X-Test-Client": {client}})
		if err == nil {
			t.Cleanup(func() { _ = c.Close() })
		}
		return c, err
	}
	a1, err1 := from("198.51.100.1")
	_, err2 := from("198.51.100.1")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := from("198.51.100.1"); err == nil {
		t.Fatal("a third socket from one client was accepted")
	}
	if _, err := from("2001:db8:1:2::1"); err != nil {
		t.Fatal(err)
	}
	if _, err := from("2001:db8:1:2::2"); err != nil { // the same /64: its second
		t.Fatal(err)
	}
	if _, err := from("2001:db8:1:2::3"); err == nil {
		t.Fatal("a third socket from one IPv6 /64 was accepted")
	}
	if _, err := from("198.51.100.2"); err != nil {
		t.Fatal(err)
	}
	_ = a1.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := from("198.51.100.1")
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed socket did not give its place back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	testutil.Eventually(t, 5*time.Second, "4 connections", func() bool { return tr.Stats().Connections == 4 })
}

// TestSwarmsPerClientAreCapped: a client may have started MaxSwarmsPerClient swarms that still exist;
// beyond that it may join swarms but start none, until one of its swarms ends.
func TestSwarmsPerClientAreCapped(t *testing.T) {
	url, _ := start(t, Config{MaxSwarmsPerClient: 2})
	c := dial(t, url)
	announce(t, c, Announce{InfoHash: idOf(1), PeerID: idOf(100), Left: 1})
	announce(t, c, Announce{InfoHash: idOf(2), PeerID: idOf(100), Left: 1})
	if err := c.Announce(Announce{InfoHash: idOf(3), PeerID: idOf(100), Left: 1}); err != nil {
		t.Fatal(err)
	}
	wantFailure(t, c, ActionAnnounce, ErrTooManySwarms)
	other := dial(t, url) // another socket of the same client: the quota is the client's, not the socket's
	if err := other.Announce(Announce{InfoHash: idOf(4), PeerID: idOf(101), Left: 1}); err != nil {
		t.Fatal(err)
	}
	wantFailure(t, other, ActionAnnounce, ErrTooManySwarms)
	announce(t, other, Announce{InfoHash: idOf(1), PeerID: idOf(101), Left: 1}) // joining is free
	announce(t, c, Announce{InfoHash: idOf(2), PeerID: idOf(100), Event: EventStopped})
	announce(t, c, Announce{InfoHash: idOf(3), PeerID: idOf(100), Left: 1}) // swarm 2 ended: room for one
}
