package gateway

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/internal/testutil"
)

// TestP2PPolicy: in auto mode (the default) a page passes unchanged in normal times, so the browser fetches
// its heavy elements at once, and is rewritten for the swarm in a crowd; off never rewrites, always always.
// A page rewritten outside a crowd preloads its head (head.go); in a crowd, where the site's link is full,
// none.
func TestP2PPolicy(t *testing.T) {
	const page = `<html><body><img src="/hero.jpg" alt=""><script src="/.swarm/loader.js" async></script></body></html>`
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "hero.jpg"), make([]byte, 200<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	o := newOrigin(t)
	o.asset("/", "text/html", []byte(page))
	crowdAfter := monitor.Config{Window: time.Second, Threshold: 5, ClientRate: -1, EnterAfter: 100 * time.Millisecond,
		ExitAfter: time.Minute}
	get := func(g *Server) string {
		t.Helper()
		resp, err := http.Get(g.url("/"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /: %d %v", resp.StatusCode, err)
		}
		return string(b)
	}
	rewritten := func(body string) bool { return strings.Contains(body, "data-swarm-src") }
	headed := func(body string) bool { return strings.Contains(body, `href="/.swarm/head/`) }
	crowd := func(g *Server) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, "a crowd", func() bool {
			for range 10 {
				get(g)
			}
			return g.Monitor().Status().State == monitor.Crowd
		})
	}

	for _, tc := range []struct {
		mode              P2PMode
		inNormal, inCrowd bool
	}{
		{P2PAuto, false, true},
		{P2PAlways, true, true},
		{P2POff, false, false},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL), Root: root},
				Visitors: VisitorConfig{P2P: tc.mode}, Monitor: crowdAfter})
			if g.Catalog().Current() == nil {
				t.Fatal("no site version from Root")
			}
			if body := get(g); rewritten(body) != tc.inNormal || headed(body) != tc.inNormal {
				t.Errorf("normal state: rewritten = %v, head = %v, want %v:\n%s", rewritten(body), headed(body), tc.inNormal, body)
			}
			crowd(g)
			if body := get(g); rewritten(body) != tc.inCrowd || headed(body) {
				t.Errorf("crowd: rewritten = %v, head = %v, want %v and no head:\n%s", rewritten(body), headed(body), tc.inCrowd, body)
			}
		})
	}
}
