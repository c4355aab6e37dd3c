package steer

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/swarmgate/swarmgate/internal/testlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testLogger(t testing.TB) *slog.Logger { return testlog.New(t, slog.LevelDebug) }

// Addresses used throughout: documentation ranges (RFC 5737, RFC 3849).
var (
	origin4 = netip.MustParseAddr("192.0.2.1")
	origin6 = netip.MustParseAddr("2001:db8::1")
	helperA = netip.MustParseAddr("198.51.100.2")
	helperB = netip.MustParseAddr("203.0.113.3")
	ns1v4   = netip.MustParseAddr("192.0.2.53")
	ns1v6   = netip.MustParseAddr("2001:db8::53")
)

// testConfig is a zone example.test. with one in-zone and one out-of-zone name server and a seeded RNG.
func testConfig() ServerConfig {
	return ServerConfig{
		Zone: "example.test",
		Addr: "127.0.0.1:0",
		NameServers: []NameServer{
			{Name: "ns1.example.test", Addrs: []netip.Addr{ns1v4, ns1v6}},
			{Name: "ns.elsewhere.test"},
		},
		Rand: rand.NewPCG(1, 2),
	}
}

// startServer builds a server on loopback port 0 and runs it until the test ends.
func startServer(t *testing.T, cfg ServerConfig) *Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

// exchange sends m to addr over netw ("udp" or "tcp") and fails the test on a transport error.
func exchange(t *testing.T, netw, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: netw, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("exchange %v over %s: %v", m.Question, netw, err)
	}
	return r
}

// query asks addr for name and qtype over UDP with RD set, as a stub resolver would.
func query(t *testing.T, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	return exchange(t, "udp", addr, m)
}

// addrsIn returns the A and AAAA addresses in rrs, in order.
func addrsIn(rrs []dns.RR) []netip.Addr {
	var out []netip.Addr
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.A:
			a, _ := netip.AddrFromSlice(rr.A)
			out = append(out, a.Unmap())
		case *dns.AAAA:
			a, _ := netip.AddrFromSlice(rr.AAAA)
			out = append(out, a)
		}
	}
	return out
}
