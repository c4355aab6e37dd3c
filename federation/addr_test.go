package federation

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestPublic(t *testing.T) {
	for a, want := range map[string]bool{
		"8.8.8.8": true, "192.0.2.1": true, "2001:db8::1": true, "2606:4700::1111": true, "::ffff:8.8.8.8": true,
		"127.0.0.1": false, "127.0.0.2": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "fc00::1": false, "fd12::1": false, "0.0.0.0": false, "0.1.2.3": false,
		"::": false, "224.0.0.1": false, "ff02::1": false, "100.64.0.1": false, "198.18.0.1": false, "240.0.0.1": false,
		"255.255.255.255": false, "::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false, "64:ff9b::a00:1": false,
		"fec0::1": false, "192.0.0.8": false,
	} {
		if got := Public(netip.MustParseAddr(a)); got != want {
			t.Errorf("Public(%s) = %v, want %v", a, got, want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	named := Member{Name: "alpha", URL: "https://alpha.example.org", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")}}
	local := Member{Name: "lab", URL: "http://127.0.0.1:8080", Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.5")}}
	open := local
	open.AllowPrivate = true
	tests := []struct {
		m   Member
		url string
		ok  bool
	}{
		{named, "https://alpha.example.org/", true},
		{named, "wss://ALPHA.example.org:8443/.swarm/announce", true},
		{named, "http://192.0.2.10:8080/.swarm/seed/", true},
		{named, "http://alpha.example.org./", true},
		{named, "https://beta.example.org/", false},
		{named, "https://alpha.example.org.evil.test/", false},
		{named, "http://192.0.2.11/", false},
		{named, "http://127.0.0.1/", false},
		{named, "http://[::1]/", false},
		{named, "not a url", false},
		{local, "http://127.0.0.1:8080/", false}, // its own URL, but loopback without allowPrivate
		{local, "http://10.0.0.5/", false},
		{open, "http://127.0.0.1:9000/", true},
		{open, "http://10.0.0.5/", true},
		{open, "http://10.0.0.6/", false},
		{open, "http://169.254.169.254/", false},
	}
	for _, tc := range tests {
		err := tc.m.CheckURL(tc.url)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrForbidden)) {
			t.Errorf("%s.CheckURL(%q) = %v; want ok %v", tc.m.Name, tc.url, err, tc.ok)
		}
	}
}

// TestGuardedClient: the guarded client reaches a loopback server only with WithPrivate(ctx, true), and
// hands a redirect back instead of following it.
func TestGuardedClient(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	c := NewHTTPClient(0)
	get := func(ctx context.Context, path string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		return c.Do(req)
	}
	if _, err := get(context.Background(), "/"); !errors.Is(err, ErrForbidden) {
		t.Errorf("loopback without allowPrivate: %v, want %v", err, ErrForbidden)
	}
	if _, err := get(WithPrivate(context.Background(), false), "/"); !errors.Is(err, ErrForbidden) {
		t.Errorf("loopback with allowPrivate false: %v, want %v", err, ErrForbidden)
	}
	if hits != 0 {
		t.Fatalf("the server was reached %d times", hits)
	}
	resp, err := get(WithPrivate(context.Background(), true), "/redirect")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || hits != 1 {
		t.Errorf("redirect: status %d after %d requests; want 302 handed back after 1", resp.StatusCode, hits)
	}
	var d net.Dialer
	d.ControlContext = GuardControl
	if _, err := d.DialContext(context.Background(), "tcp", srv.Listener.Addr().String()); !errors.Is(err, ErrForbidden) {
		t.Errorf("guarded dial to loopback: %v", err)
	}
}
