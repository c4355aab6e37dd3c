package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/swarmapi"
)

// postReport posts an engine report from the local address ip (any 127.x is a distinct client on loopback).
func postReport(t *testing.T, g *Server, ip string, rep swarmapi.StatsReport) int {
	t.Helper()
	b, _ := json.Marshal(rep)
	c := clientFrom(ip)
	defer c.CloseIdleConnections()
	resp, err := c.Post(g.url(swarmapi.PathStats), "text/plain", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// manifestFrom fetches the manifest as the client at ip.
func manifestFrom(t *testing.T, g *Server, ip string) swarmapi.Manifest {
	t.Helper()
	c := clientFrom(ip)
	defer c.CloseIdleConnections()
	resp, err := c.Get(g.url(swarmapi.PathManifest))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m swarmapi.Manifest
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestStatsReportsCannotInflateTheOffload: engines' reports feed the peer byte count, so they are credited
// only with their page view's token, from the client it was issued to, up to what one page view can
// receive, and for a bounded number of page views per client a minute. Before report tokens, 200 posts of
// made-up numbers moved the offload ratio from 12% to 97%.
func TestStatsReportsCannotInflateTheOffload(t *testing.T) {
	dir := t.TempDir()
	const size = 100_000
	if err := os.WriteFile(filepath.Join(dir, "hero.jpg"), testBytes(size, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(newOrigin(t).URL), Root: dir}})
	total := g.cat.Current().Info.TotalLength()
	peers := func() int64 { return g.Bytes()[SourcePeers] }

	// No token, or a made-up one: refused, nothing counted.
	for _, tok := range []string{"", "bm90IGEgdG9rZW4", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		if code := postReport(t, g, "127.0.0.1", swarmapi.StatsReport{PeerBytes: total, Token: tok}); code != http.StatusForbidden {
			t.Errorf("report with token %q: HTTP %d, want 403", tok, code)
		}
	}
	if n := peers(); n != 0 {
		t.Fatalf("reports without a valid token counted %d peer bytes", n)
	}

	// An honest page view: its reports are counted.
	m := manifestFrom(t, g, "127.0.0.1")
	if m.ReportToken == "" {
		t.Fatal("the manifest carries no report token")
	}
	if code := postReport(t, g, "127.0.0.1", swarmapi.StatsReport{PeerBytes: 1000, UploadedBytes: 500, Token: m.ReportToken}); code != http.StatusNoContent {
		t.Fatalf("honest report: HTTP %d", code)
	}
	if n := peers(); n != 1000 {
		t.Fatalf("honest report counted %d peer bytes, want 1000", n)
	}

	// The same token from another client: refused.
	if code := postReport(t, g, "127.0.0.2", swarmapi.StatsReport{PeerBytes: 1000, Token: m.ReportToken}); code != http.StatusForbidden {
		t.Errorf("a token used from another client: HTTP %d, want 403", code)
	}

	// 200 reports on one page view's token are credited no more than that page view can receive.
	for range 200 {
		postReport(t, g, "127.0.0.1", swarmapi.StatsReport{PeerBytes: total, Token: m.ReportToken})
	}
	if n := peers(); n != reportPeerFactor*total {
		t.Fatalf("200 reports on one token counted %d peer bytes, want the page view's bound %d", n, reportPeerFactor*total)
	}

	// Fresh page views, one after another from one client: at most maxReportViewsPerClient a minute count.
	before := peers()
	credited := 0
	for range maxReportViewsPerClient + 20 {
		tok := manifestFrom(t, g, "127.0.0.3").ReportToken
		if postReport(t, g, "127.0.0.3", swarmapi.StatsReport{PeerBytes: 1, Token: tok}) == http.StatusNoContent {
			credited++
		}
	}
	// A minute may turn over during the loop, which lets at most one more minute's worth through.
	if credited < maxReportViewsPerClient || credited > 2*maxReportViewsPerClient || peers()-before != int64(credited) {
		t.Fatalf("%d of %d page views of one client credited (%d bytes), want %d a minute",
			credited, maxReportViewsPerClient+20, peers()-before, maxReportViewsPerClient)
	}
	if code := postReport(t, g, "127.0.0.1", swarmapi.StatsReport{PeerBytes: -5, Token: m.ReportToken}); code != http.StatusBadRequest {
		t.Errorf("negative report: HTTP %d, want 400", code)
	}
}

// TestReportTokensExpire: a token is credited for reportTokenTTL after its manifest was served.
func TestReportTokensExpire(t *testing.T) {
	r := newReports()
	now := time.Unix(1_800_000_000, 0)
	r.now = func() time.Time { return now }
	client := netip.MustParseAddr("127.0.0.1")
	tok := r.mint(client, 100, 100)
	now = now.Add(reportTokenTTL - time.Second)
	if p, _, err := r.credit(swarmapi.StatsReport{PeerBytes: 10, Token: tok}, client); err != nil || p != 10 {
		t.Fatalf("a live token: credited %d, %v", p, err)
	}
	now = now.Add(2 * time.Second)
	if _, _, err := r.credit(swarmapi.StatsReport{PeerBytes: 10, Token: tok}, client); err == nil {
		t.Fatal("an expired token was credited")
	}
}

// TestMetricsAreTheOperators: /.swarm/metrics answers the operator only (this machine, or the dashboard
// token), as the dashboard does; before, any visitor could read the gateway's internals there. Behind the
// operator's front proxy on 127.0.0.2, visitors are whoever it names.
func TestMetricsAreTheOperators(t *testing.T) {
	g := startGateway(t, Config{
		Site:           SiteConfig{Origin: mustURL(newOrigin(t).URL)},
		Clients:        ClientConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}},
		DashboardToken: "s3cret",
	})
	for _, c := range []struct {
		from string
		hdr  []string
		want int
	}{
		{"127.0.0.1", nil, http.StatusOK},
		{"127.0.0.2", []string{"X-Forwarded-For", "203.0.113.9"}, http.StatusForbidden},
		{"127.0.0.2", nil, http.StatusForbidden},
		{"127.0.0.3", []string{"X-Forwarded-For", "127.0.0.1"}, http.StatusForbidden},
		{"127.0.0.2", []string{"X-Forwarded-For", "203.0.113.9", "Authorization", "Bearer s3cret"}, http.StatusOK},
		{"127.0.0.2", []string{"X-Forwarded-For", "203.0.113.9", "Authorization", "Bearer wrong"}, http.StatusForbidden},
	} {
		if got := statusFrom(t, clientFrom(c.from), g.url(swarmapi.PathMetrics), c.hdr...); got != c.want {
			t.Errorf("metrics from %s with %q: HTTP %d, want %d", c.from, c.hdr, got, c.want)
		}
	}
}
