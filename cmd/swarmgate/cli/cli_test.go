package cli

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/gateway/monitor"
)

// TestDemo runs README's first command, `swarmgate demo`, and loads the page it prints.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"demo", "--port", "0", "--dns-port", "0", "--dir", t.TempDir(), "--log-level", "warn"}, pw, io.Discard)
		pw.Close()
	}()
	urlRE := regexp.MustCompile(`gateway \(open this\):\s+(http://\S+)`)
	sc := bufio.NewScanner(pr)
	var page string
	for sc.Scan() {
		if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
			page = m[1]
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if page == "" {
		t.Fatal("demo printed no URL to open")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `data-swarm-src="/media/photo.png"`) {
		t.Fatalf("demo page: %d\n%s", resp.StatusCode, body)
	}
	resp, err = client.Get(strings.TrimSuffix(page, "/") + "/.swarm/manifest.json")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("manifest: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("demo exited %d", code)
	}
}

func TestServeFlags(t *testing.T) {
	fed := federationFlags(t)
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--origin", "http://127.0.0.1:8080"}, true},
		{[]string{"--origin", "ftp://x"}, false},
		{[]string{"--origin", "127.0.0.1:8080"}, false},
		{[]string{"--public", "/img/,/css/"}, true},
		{[]string{"--public", "img/"}, false},
		{[]string{"--ice", "stun:127.0.0.1:3478"}, true},
		{[]string{"--ice", "http://stun.example"}, false},
		{[]string{"--min-swarm-size", "0"}, false},
		{[]string{"--fallback", "-1s"}, false},
		{[]string{"--micro-cache-ttl", "2s"}, true},
		{[]string{"--micro-cache-ttl", "-1s"}, true}, // off
		{[]string{"--micro-cache-ttl", "soon"}, false},
		{[]string{"--uplink", "20Mbit"}, true},
		{[]string{"--uplink", "20Mbps"}, false},
		{[]string{"extra"}, false},
		{[]string{"--tls-listen", "127.0.0.1:8443"}, true},
		{[]string{"--acme-directory", "https://127.0.0.1:14000/dir"}, false},    // needs --federation
		{[]string{"--acme-email", "ops@example.org"}, false},                    // needs --acme-directory
		{[]string{"--acme-ca-roots", "/nonexistent.pem"}, false},                // needs --acme-directory
		{append(fed, "--acme-directory", "https://127.0.0.1:14000/dir"), false}, // needs an HTTPS listener
		{append(fed, "--acme-directory", "https://127.0.0.1:14000/dir", "--tls-listen", ":8443"), true},
		{append(fed, "--acme-directory", "https://127.0.0.1:14000/dir", "--tls-listen", ":8443", "--acme-ca-roots", "/nonexistent.pem"), false},
		{[]string{"--no-such-flag"}, false},
		{[]string{"--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "2001:db8::1"}, true},
		{[]string{"--trusted-proxy", "10.0.0.300"}, false},
		{[]string{"--trusted-proxy", "proxy.example"}, false},
		{[]string{"--crowd-threshold", "200", "--crowd-client-rate", "2", "--crowd-window", "30s"}, true},
		{[]string{"--crowd-client-rate", "-1"}, true},
		{[]string{"--crowd-threshold", "0"}, false},
		{[]string{"--crowd-threshold", "NaN"}, false},
		{[]string{"--crowd-client-rate", "0"}, false},
		{[]string{"--crowd-client-rate", "-2"}, false},
		{[]string{"--crowd-window", "0s"}, false},
		{[]string{"--crowd-enter-after", "-1s"}, false},
		{[]string{"--max-conns-per-client", "64", "--tracker-sockets-per-client", "-1", "--swarms-per-client", "10"}, true},
		{[]string{"--max-conns-per-client", "0"}, false},
		{[]string{"--tracker-sockets-per-client", "-5"}, false},
		{[]string{"--swarms-per-client", "0"}, false},
		{[]string{"--p2p", "always"}, true},
		{[]string{"--p2p", "sometimes"}, false},
	} {
		_, _, err := serveConfig(tc.args, io.Discard)
		if (err == nil) != tc.ok {
			t.Errorf("serve %v: err = %v, want ok=%v", tc.args, err, tc.ok)
		}
	}
}

// TestServeFlagValues: the crowd and client flags land in the gateway's configuration, with the
// monitor's defaults when not given.
func TestServeFlagValues(t *testing.T) {
	cfg, _, err := serveConfig([]string{"--trusted-proxy", "10.1.2.3/8", "--trusted-proxy", "::ffff:192.0.2.1",
		"--crowd-threshold", "120", "--crowd-client-rate", "-1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}
	if !slices.Equal(cfg.Clients.TrustedProxies, want) || cfg.Monitor.Threshold != 120 || cfg.Monitor.ClientRate != -1 ||
		cfg.Monitor.Window != monitor.DefaultWindow {
		t.Fatalf("trusted %v, monitor %+v", cfg.Clients.TrustedProxies, cfg.Monitor)
	}
	cfg, _, err = serveConfig(nil, io.Discard)
	if err != nil || cfg.Clients.TrustedProxies != nil || cfg.Monitor.Threshold != monitor.DefaultThreshold ||
		cfg.Monitor.ClientRate != monitor.DefaultClientRate {
		t.Fatalf("defaults: %+v %v", cfg.Monitor, err)
	}
}

func TestLoadIsBoundedAndReports(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	var out strings.Builder
	start := time.Now()
	code := Run(context.Background(), []string{"load", "-rate", "200", "-duration", "500ms", "-clients", "4", srv.URL}, &out, io.Discard)
	if code != 0 || time.Since(start) > 5*time.Second {
		t.Fatalf("exit %d after %v", code, time.Since(start))
	}
	if n := hits.Load(); n < 20 || n > 120 {
		t.Fatalf("%d requests at 200/s for 0.5 s", n)
	}
	if !strings.Contains(out.String(), "done: ") {
		t.Fatalf("no summary: %q", out.String())
	}
	for _, bad := range [][]string{{"load", "-rate", "1e9", srv.URL}, {"load", "ftp://x"}, {"load"}} {
		if code := Run(context.Background(), bad, io.Discard, io.Discard); code != 2 {
			t.Fatalf("%v: exit %d", bad, code)
		}
	}
}

// federationFlags are serve's flags for a member of a one-member federation, its key in a fresh data dir.
func federationFlags(t *testing.T) []string {
	t.Helper()
	data := t.TempDir()
	key, err := federation.LoadOrCreateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "federation.json")
	body := fmt.Sprintf(`{"members":[{"name":"alpha","url":"http://127.0.0.1:8000","key":%q}]}`,
		federation.FormatPublicKey(key.Public().(ed25519.PublicKey)))
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"--data", data, "--federation", file}
}
