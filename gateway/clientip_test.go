package gateway

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/swarmapi"
)

func TestResolveClient(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:1::/48"),
		netip.MustParsePrefix("127.0.0.2/32")}
	for _, tc := range []struct {
		name, remote string
		hdr          []string // name, value pairs
		want         string   // "" for the zero Addr
		sure         bool
	}{
		{"direct", "203.0.113.9:5000", nil, "203.0.113.9", true},
		{"direct v6", "[2001:db8:2::5]:5000", nil, "2001:db8:2::5", true},
		{"v4-mapped peer", "[::ffff:203.0.113.9]:5000", nil, "203.0.113.9", true},
		{"untrusted peer's header is ignored", "203.0.113.9:5000", []string{"X-Forwarded-For", "127.0.0.1"}, "203.0.113.9", false},
		{"untrusted loopback relaying", "127.0.0.1:5000", []string{"Forwarded", "for=198.51.100.1"}, "127.0.0.1", false},
		{"untrusted loopback X-Real-IP", "127.0.0.1:5000", []string{"X-Real-Ip", "198.51.100.1"}, "127.0.0.1", false},
		{"trusted proxy", "10.1.2.3:5000", []string{"X-Forwarded-For", "198.51.100.7"}, "198.51.100.7", true},
		{"right-most untrusted wins", "10.1.2.3:5000", []string{"X-Forwarded-For", "127.0.0.1, 198.51.100.7, 10.9.9.9"}, "198.51.100.7", true},
		{"header lines in order", "10.1.2.3:5000", []string{"X-Forwarded-For", "127.0.0.1", "X-Forwarded-For", "198.51.100.7"}, "198.51.100.7", true},
		{"ports and brackets", "10.1.2.3:5000", []string{"X-Forwarded-For", "[2001:db8:2::7]:443, 10.0.0.1:80"}, "2001:db8:2::7", true},
		{"all trusted: left-most", "10.1.2.3:5000", []string{"X-Forwarded-For", "10.0.0.7, 10.0.0.8"}, "10.0.0.7", true},
		{"trusted proxy naming nobody", "127.0.0.2:5000", nil, "127.0.0.2", false},
		{"garbage right of the client", "10.1.2.3:5000", []string{"X-Forwarded-For", "198.51.100.7, bogus"}, "10.1.2.3", false},
		{"garbage left of the client", "10.1.2.3:5000", []string{"X-Forwarded-For", "bogus, 198.51.100.7"}, "198.51.100.7", true},
		{"garbage behind trusted hops", "10.1.2.3:5000", []string{"X-Forwarded-For", "bogus, 10.0.0.5"}, "10.0.0.5", false},
		{"empty entry", "10.1.2.3:5000", []string{"X-Forwarded-For", "198.51.100.7,,"}, "10.1.2.3", false},
		{"zone", "10.1.2.3:5000", []string{"X-Forwarded-For", "fe80::1%eth0"}, "10.1.2.3", false},
		{"Forwarded", "10.1.2.3:5000", []string{"Forwarded", `for=198.51.100.7;proto=https, for="[2001:db8:1::9]:4711"`}, "198.51.100.7", true},
		{"Forwarded v6 client", "[2001:db8:1::1]:5000", []string{"Forwarded", `for="[2001:db8:2::9]";by=x, For=10.0.0.1`}, "2001:db8:2::9", true},
		{"Forwarded quoted comma", "10.1.2.3:5000", []string{"Forwarded", `for=198.51.100.7;host="a,b"`}, "198.51.100.7", true},
		{"Forwarded unknown", "10.1.2.3:5000", []string{"Forwarded", `for=unknown`}, "10.1.2.3", false},
		{"Forwarded obfuscated", "10.1.2.3:5000", []string{"Forwarded", `for=_hidden, for=198.51.100.7`}, "198.51.100.7", true},
		{"Forwarded without for", "10.1.2.3:5000", []string{"Forwarded", `proto=https`}, "10.1.2.3", false},
		{"X-Forwarded-For before Forwarded", "10.1.2.3:5000", []string{"Forwarded", "for=198.51.100.8", "X-Forwarded-For", "198.51.100.7"}, "198.51.100.7", true},
		{"not an IP peer", "pipe", nil, "", false},
	} {
		h := http.Header{}
		for i := 0; i+1 < len(tc.hdr); i += 2 {
			h.Add(tc.hdr[i], tc.hdr[i+1])
		}
		got := resolveClient(tc.remote, h, trusted)
		var want netip.Addr
		if tc.want != "" {
			want = netip.MustParseAddr(tc.want)
		}
		if got.addr != want || got.sure != tc.sure {
			t.Errorf("%s: got %v sure=%v, want %v sure=%v", tc.name, got.addr, got.sure, want, tc.sure)
		}
	}
}

func TestForwardedHeaderValues(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"2001:db8::1", `"[2001:db8::1]"`},
		{"unknown", "unknown"},
		{"_hidden", "_hidden"},
		{`a"b`, `"a\"b"`},
	} {
		if got := forwardedNode(tc.in); got != tc.want {
			t.Errorf("forwardedNode(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := quoteIfNeeded("example.org:8000"); got != `"example.org:8000"` {
		t.Errorf("host with port: %s", got)
	}
	if got := forwardedFor(`for="[2001:db8::1]:80";host="x;y", for=192.0.2.1`); len(got) != 2 || got[0] != "[2001:db8::1]:80" || got[1] != "192.0.2.1" {
		t.Errorf("forwardedFor: %q", got)
	}
}

// clientFrom returns an HTTP client whose connections come from the local address ip (any 127.x address is
// a distinct client host on loopback).
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func statusFrom(t *testing.T, c *http.Client, url string, hdr ...string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDashboardLoopbackRuleUsesTheResolvedClient: behind a front proxy on this machine that sets no
// X-Forwarded-For, visitors are not the operator; the dashboard trusts a forwarded address only from a
// trusted proxy, and never from anyone else.
func TestDashboardLoopbackRuleUsesTheResolvedClient(t *testing.T) {
	g := startGateway(t, Config{Clients: ClientConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}})
	status := g.url(swarmapi.PathStatus)
	for _, tc := range []struct {
		from string
		hdr  []string
		want int
	}{
		{"127.0.0.1", nil, 200}, // the operator on this machine
		{"127.0.0.3", nil, 200},
		{"127.0.0.2", nil, 403}, // the trusted proxy, naming nobody
		{"127.0.0.2", []string{"X-Forwarded-For", "203.0.113.9"}, 403},            // a visitor through it
		{"127.0.0.2", []string{"X-Forwarded-For", "127.0.0.1"}, 200},              // the operator through it
		{"127.0.0.2", []string{"X-Forwarded-For", "127.0.0.1, 203.0.113.9"}, 403}, // a visitor claiming loopback
		{"127.0.0.3", []string{"X-Forwarded-For", "127.0.0.1"}, 403},              // an untrusted relay
		{"127.0.0.3", []string{"Forwarded", "for=127.0.0.1"}, 403},
	} {
		if got := statusFrom(t, clientFrom(tc.from), status, tc.hdr...); got != tc.want {
			t.Errorf("from %s %v: %d, want %d", tc.from, tc.hdr, got, tc.want)
		}
	}
	r := httptest.NewRequest(http.MethodGet, status, nil)
	r.RemoteAddr = "127.0.0.2:5000"
	if g.trustedLocal(r) || g.clientIP(r) != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("trusted proxy naming nobody: local %v, client %v", g.trustedLocal(r), g.clientIP(r))
	}
}

// TestOriginGetsTheClientChain: the origin learns who asked. An untrusted peer's X-Forwarded-For is
// dropped, not continued (it could name anyone); a trusted proxy's is continued, and Forwarded says the same.
func TestOriginGetsTheClientChain(t *testing.T) {
	got := make(chan http.Header, 1)
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Clone():
		default:
		}
	}))
	defer o.Close()
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL)}, Clients: ClientConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}})
	host := g.Addr().String()
	for _, tc := range []struct {
		from               string
		hdr                []string
		xff, fwd, fwdProto string
		real               string // X-Real-IP
	}{
		{"127.0.0.3", []string{"X-Forwarded-For", "198.51.100.66", "X-Forwarded-Proto", "https", "X-Real-IP", "10.0.0.1"},
			"127.0.0.3", `for=127.0.0.3;host="` + host + `";proto=http`, "http", "127.0.0.3"},
		{"127.0.0.2", []string{"X-Forwarded-For", "2001:db8::7, 198.51.100.7", "X-Forwarded-Proto", "https"},
			"2001:db8::7, 198.51.100.7, 127.0.0.2",
			`for="[2001:db8::7]", for=198.51.100.7, for=127.0.0.2;host="` + host + `";proto=https`, "https", "127.0.0.2"},
		{"127.0.0.2", []string{"Forwarded", `for=198.51.100.7;proto=https`, "X-Real-IP", "198.51.100.7"},
			"127.0.0.2", `for=198.51.100.7;proto=https, for=127.0.0.2;host="` + host + `";proto=http`, "http", "198.51.100.7"},
	} {
		if s := statusFrom(t, clientFrom(tc.from), g.url("/page"), tc.hdr...); s != 200 {
			t.Fatalf("status %d", s)
		}
		h := <-got
		if h.Get("X-Forwarded-For") != tc.xff || h.Get("Forwarded") != tc.fwd || h.Get("X-Forwarded-Proto") != tc.fwdProto ||
			h.Get("X-Forwarded-Host") != host || h.Get("X-Real-Ip") != tc.real {
			t.Errorf("from %s %v: origin got X-Forwarded-For %q, Forwarded %q, proto %q, host %q, X-Real-IP %q (want %q)",
				tc.from, tc.hdr, h.Get("X-Forwarded-For"), h.Get("Forwarded"), h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Host"),
				h.Get("X-Real-Ip"), tc.real)
		}
	}
}
