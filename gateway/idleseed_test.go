package gateway_test

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/internal/browsertest"
	"github.com/swarmgate/swarmgate/internal/examplesite"
	"github.com/swarmgate/swarmgate/internal/testutil"
	"github.com/swarmgate/swarmgate/swarmapi"
	"github.com/swarmgate/swarmgate/tracker"
)

// idleSeedWindow is how long a test watches for a page that must not seed: the loader starts at idle, within
// 5 s of the load event (IDLE_TIMEOUT_MS), and a seeding engine joins the swarm well within a second after.
const idleSeedWindow = 8 * time.Second

// crowdSoon enters the crowd state within a few bursts of requests (see crowdNow), never on a page view alone.
var crowdSoon = monitor.Config{Window: time.Second, Threshold: 40, ClientRate: -1, EnterAfter: 100 * time.Millisecond,
	ExitAfter: time.Minute}

// swarmOf returns a function counting the peers in the tracker's swarm of the gateway's current version, once
// the gateway's own seeder is in it.
func swarmOf(t *testing.T, g *gateway.Server) func() int {
	t.Helper()
	resp, err := http.Get("http://" + g.Addr().String() + swarmapi.PathManifest)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m swarmapi.Manifest
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	var ih tracker.ID
	if b, err := hex.DecodeString(m.InfoHash); err != nil || copy(ih[:], b) != len(ih) {
		t.Fatalf("manifest infohash %q", m.InfoHash)
	}
	peers := func() int {
		c, i := g.Tracker().SwarmCounts(ih)
		return c + i
	}
	testutil.Eventually(t, 10*time.Second, "the gateway's seeder in the swarm", func() bool { return peers() > 0 })
	return peers
}

// viewUnchanged loads the example page as served in normal times (heavy elements not rewritten) and waits until
// its image and audio have loaded over HTTP.
func viewUnchanged(t *testing.T, s *site, p *browsertest.Page, u string) {
	t.Helper()
	res := loadPage(t, p, u)
	checkHashes(t, s, "normal-times page", res)
	for id, via := range res.Via {
		if via != "http" {
			t.Fatalf("normal times: %s loaded via %s, want http (the page passes unchanged)", id, via)
		}
	}
}

// neverJoins watches the swarm for idleSeedWindow: it must keep n peers. With noEngine, the page must not even
// have started the engine; else the engine, if it runs, moved no byte.
func neverJoins(t *testing.T, p *browsertest.Page, peers func() int, n int, noEngine bool) {
	t.Helper()
	for deadline := time.Now().Add(idleSeedWindow); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got := peers(); got != n {
			t.Fatalf("the swarm has %d peers, want %d: the page joined it", got, n)
		}
	}
	st, err := browsertest.Eval[map[string]float64](p, 10*time.Second, `window.swarmgate.stats()`)
	if err != nil {
		t.Fatal(err)
	}
	if noEngine && st != nil {
		t.Errorf("the page runs an engine (stats %v)", st)
	}
	for k, v := range st {
		if v != 0 {
			t.Errorf("engine stats: %s = %v, want 0", k, v)
		}
	}
}

// TestIdlePageSeedsWhatItLoaded: a page viewed in normal times (P2P auto: served unchanged, its heavy elements
// loaded over HTTP) joins the swarm at idle as a seed of what the browser's HTTP cache holds, verified; when a
// crowd arrives, a visitor of the rewritten page takes bytes from that first browser.
func TestIdlePageSeedsWhatItLoaded(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	// A generous fallback: the second visitor's bytes are to come from peers, not the webseed.
	g := startGateway(t, gateway.Config{
		Site:     gateway.SiteConfig{Origin: origin, Root: dir},
		Visitors: gateway.VisitorConfig{P2P: gateway.P2PAuto, Fallback: 30 * time.Second},
		Monitor:  crowdSoon,
	})
	pageURL := "http://" + g.Addr().String() + examplesite.PageHTML
	peers := swarmOf(t, g)
	before := peers() // the gateway's own seeder

	b := browsertest.Start(t)
	first := b.NewPage()
	viewUnchanged(t, s, first, pageURL)
	testutil.Eventually(t, 30*time.Second, "the first browser joins the swarm", func() bool { return peers() > before })

	crowdNow(t, g, pageURL)
	second := b.NewPage()
	res := loadPage(t, second, pageURL)
	checkHashes(t, s, "crowd page", res)
	if res.Via["photo"] != "p2p" {
		t.Fatalf("in the crowd the page did not use the engine: %v", res.Via)
	}
	t.Logf("second visitor's engine stats: %v", res.Stats)
	// The first browser holds the photo (its audio was fetched by Range, so the HTTP cache holds no whole copy
	// to seed). The gateway's seeder, which answers first, may still serve part of the photo.
	if res.Stats["peerBytes"] <= 0 {
		t.Errorf("the second visitor took no bytes from the first browser")
	}
	up, err := browsertest.Eval[float64](first, 10*time.Second, `window.swarmgate.stats().uploadedBytes`)
	if err != nil || up <= 0 {
		t.Errorf("the seeding page reports %v bytes uploaded (%v)", up, err)
	}
	t.Logf("the seeding page uploaded %.0f bytes of the %d-byte photo", up, len(s.files[examplesite.ImagePNG]))
	if dl, err := browsertest.Eval[float64](first, 10*time.Second,
		`(s => s.peerBytes + s.seederBytes + s.webseedBytes)(window.swarmgate.stats())`); err != nil || dl != 0 {
		t.Errorf("the seeding page downloaded %v bytes (%v); seed-only mode downloads nothing", dl, err)
	}
}

// crowdNow sends the gateway requests until it is in the crowd state.
func crowdNow(t *testing.T, g *gateway.Server, u string) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, "a crowd", func() bool {
		for range 60 {
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		return g.Monitor().Status().State == monitor.Crowd
	})
}

// TestIdleSeedHonoursDownloadOnly: a page view that may not upload (the visitor's GPC, the operator's
// NoUploads) never joins the swarm as a seed.
func TestIdleSeedHonoursDownloadOnly(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	b := browsertest.Start(t)
	for _, tc := range []struct {
		name      string
		noUploads bool
		init      string
	}{
		{name: "GPC", init: gpcScript},
		{name: "operator", noUploads: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, gateway.Config{
				Site:     gateway.SiteConfig{Origin: origin, Root: dir},
				Visitors: gateway.VisitorConfig{P2P: gateway.P2PAuto, NoUploads: tc.noUploads},
			})
			peers := swarmOf(t, g)
			before := peers()
			p := b.NewPage()
			// The page closes before its gateway stops: its requests (the audio's ranges, under load still
			// coming) would otherwise hold the gateway's shutdown past its deadline.
			t.Cleanup(func() { _ = chromedp.Cancel(p.Ctx) })
			if tc.init != "" {
				if err := initScript(tc.init)(p); err != nil {
					t.Fatal(err)
				}
			}
			viewUnchanged(t, s, p, "http://"+g.Addr().String()+examplesite.PageHTML)
			neverJoins(t, p, peers, before, true)
		})
	}
}

// TestIdleSeedReadsOnlyTheCache: assets the browser may not cache (no-store) are not seeded, and seeding never
// fetches them again: the origin sees no request for them after the page loaded.
func TestIdleSeedReadsOnlyTheCache(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	var heavyRequests atomic.Int64
	files := s.Config.Handler
	s.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range examplesite.Heavy {
			if r.URL.Path == p {
				heavyRequests.Add(1)
				w = noStore{w}
			}
		}
		files.ServeHTTP(w, r)
	})
	origin, _ := url.Parse(s.URL)
	g := startGateway(t, gateway.Config{
		Site:     gateway.SiteConfig{Origin: origin, Root: dir},
		Visitors: gateway.VisitorConfig{P2P: gateway.P2PAuto},
	})
	peers := swarmOf(t, g)
	before := peers()
	p := browsertest.Start(t).NewPage()
	viewUnchanged(t, s, p, "http://"+g.Addr().String()+examplesite.PageHTML)
	loaded := heavyRequests.Load()
	neverJoins(t, p, peers, before, false)
	if n := heavyRequests.Load(); n != loaded {
		t.Errorf("the origin got %d requests for heavy assets after the page loaded", n-loaded)
	}
}

// noStore makes a response uncacheable, whatever the file server set.
type noStore struct{ http.ResponseWriter }

func (w noStore) WriteHeader(code int) {
	w.Header().Set("Cache-Control", "no-store")
	w.ResponseWriter.WriteHeader(code)
}

func (w noStore) Write(b []byte) (int, error) {
	w.Header().Set("Cache-Control", "no-store")
	return w.ResponseWriter.Write(b)
}
