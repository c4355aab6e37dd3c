package gateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/internal/browsertest"
	"github.com/swarmgate/swarmgate/internal/examplesite"
	"github.com/swarmgate/swarmgate/internal/testlog"
	"github.com/swarmgate/swarmgate/swarmapi"
)

// site serves the example site as the origin, counting the bytes it sends per path.
type site struct {
	*httptest.Server
	files map[string][]byte
	mu    sync.Mutex
	sent  map[string]int64
	csp   string // a Content-Security-Policy for its responses, if any
}

func newSite(t *testing.T, dir string) *site {
	files, err := examplesite.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := &site{files: files, sent: map[string]int64{}}
	fsrv := http.FileServer(http.Dir(dir))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		s.mu.Lock()
		if csp := s.csp; csp != "" { // on every response: only a document's counts
			w.Header().Set("Content-Security-Policy", csp)
		}
		s.mu.Unlock()
		cw := &countWriter{ResponseWriter: w}
		fsrv.ServeHTTP(cw, r)
		s.mu.Lock()
		s.sent[r.URL.Path] += cw.n
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

type countWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func testLogger(t *testing.T) *slog.Logger { return testlog.New(t, slog.LevelInfo) }

func startGateway(t *testing.T, cfg gateway.Config) *gateway.Server {
	t.Helper()
	cfg.Net.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Logger = testLogger(t)
	if cfg.Visitors.P2P == "" {
		cfg.Visitors.P2P = gateway.P2PAlways // the tests of P2P run in any state; p2p_test.go tests the default
	}
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	})
	return g
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// pageResult is what a loaded page reports about its heavy assets.
type pageResult struct {
	Hashes map[string]string  `json:"hashes"` // element id → SHA-256 of the bytes it shows
	Via    map[string]string  `json:"via"`    // element id → "p2p" or "http"
	Stats  map[string]float64 `json:"stats"`  // the engine's byte counts, if it ran
	Thread string             `json:"thread"` // where the engine's core ran: "worker", "page", or "" (no engine)
	Ready  bool               `json:"ready"`
}

// loadedJS waits until the page's image and audio have their bytes, then hashes those bytes.
const loadedJS = `(async () => {
	const deadline = Date.now() + 60000;
	const img = document.getElementById('photo'), audio = document.getElementById('tone');
	const ready = () => document.querySelectorAll('[data-swarm-src],[data-swarm-srcset]').length === 0 &&
		img.complete && img.naturalWidth > 0 && audio.readyState >= 1;
	while (!ready()) {
		if (Date.now() > deadline) return { ready: false, hashes: {}, via: {}, stats: null };
		await new Promise(r => setTimeout(r, 50));
	}
	const hex = b => Array.from(new Uint8Array(b), x => x.toString(16).padStart(2, '0')).join('');
	const hashes = {}, via = {};
	for (const el of [img, audio]) {
		const buf = await (await fetch(el.currentSrc || el.src)).arrayBuffer();
		hashes[el.id] = hex(await crypto.subtle.digest('SHA-256', buf));
		via[el.id] = el.dataset.swarm || 'http';
	}
	const stats = window.swarmgate ? window.swarmgate.stats() : null;
	return { ready: true, hashes, via, stats, thread: stats ? stats.thread : '' };
})()`

func loadPage(t *testing.T, p *browsertest.Page, u string) pageResult {
	t.Helper()
	res, err := tryLoadPage(p, u)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// tryLoadPage is loadPage for a goroutine other than the test's, which may not end the test.
func tryLoadPage(p *browsertest.Page, u string) (pageResult, error) {
	if err := p.Do(30*time.Second, chromedp.Navigate(u)); err != nil {
		return pageResult{}, fmt.Errorf("navigate: %w", err)
	}
	res, err := browsertest.Eval[pageResult](p, 90*time.Second, loadedJS)
	if err != nil {
		return pageResult{}, fmt.Errorf("page: %w", err)
	}
	if !res.Ready {
		return pageResult{}, fmt.Errorf("page assets did not load; console: %v", p.Console())
	}
	return res, nil
}

func checkHashes(t *testing.T, s *site, name string, res pageResult) {
	t.Helper()
	want := map[string]string{"photo": sha(s.files[examplesite.ImagePNG]), "tone": sha(s.files[examplesite.AudioWAV])}
	for id, h := range want {
		if res.Hashes[id] != h {
			t.Errorf("%s: %s shows bytes with SHA-256 %s, want %s", name, id, res.Hashes[id], h)
		}
	}
}

// TestCrowdOfBrowsersSharesTheSite is the gateway's end-to-end proof: five default browsers load the example
// site; the later four take the heavy assets from the earlier ones.
func TestCrowdOfBrowsersSharesTheSite(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	// A generous fallback: this test measures where bytes come from when the swarm works, and a machine
	// slowed by the race detector must not push browsers to the webseed.
	g := startGateway(t, gateway.Config{
		Site:     gateway.SiteConfig{Origin: origin, Root: dir},
		Visitors: gateway.VisitorConfig{Fallback: 5 * time.Second},
	})
	pageURL := "http://" + g.Addr().String() + examplesite.PageHTML
	heavy := int64(len(s.files[examplesite.ImagePNG]) + len(s.files[examplesite.AudioWAV]))

	b := browsertest.Start(t)
	first := b.NewPage()
	res := loadPage(t, first, pageURL)
	checkHashes(t, s, "browser 1", res)
	if res.Via["photo"] != "p2p" || res.Via["tone"] != "p2p" {
		t.Fatalf("browser 1 did not use the engine: %v (console %v)", res.Via, first.Console())
	}
	t.Logf("browser 1 engine stats: %v", res.Stats)
	// The version pads each file but the last to a piece boundary (BEP 47); the engine fills padding in
	// itself, so what it receives is the files' bytes and at most the one block per file that holds both a
	// file's end and the start of its padding.
	padding := versionPadding(t, g)
	got := int64(res.Stats["peerBytes"] + res.Stats["seederBytes"] + res.Stats["webseedBytes"])
	if limit := heavy + 2*16<<10; padding > 2*16<<10 && got > limit {
		t.Errorf("browser 1 received %d bytes for %d bytes of files and %d of padding; want at most %d",
			got, heavy, padding, limit)
	}
	t.Logf("browser 1 received %d bytes for %d bytes of files (the version holds %d bytes of padding)", got, heavy, padding)

	var (
		wg                        sync.WaitGroup
		mu                        sync.Mutex
		peerBytes, allEngineBytes float64
		seederBytes               = res.Stats["seederBytes"]
	)
	var failed atomic.Bool
	for i := 2; i <= 5; i++ {
		p := b.NewPage()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := tryLoadPage(p, pageURL)
			if err != nil {
				failed.Store(true)
				t.Errorf("browser %d: %v", i, err)
				return
			}
			checkHashes(t, s, fmt.Sprintf("browser %d", i), r)
			if r.Via["photo"] != "p2p" || r.Via["tone"] != "p2p" {
				failed.Store(true)
				t.Errorf("browser %d fell back to HTTP: %v", i, r.Via)
			}
			t.Logf("browser %d engine stats: %v", i, r.Stats)
			mu.Lock()
			peerBytes += r.Stats["peerBytes"]
			seederBytes += r.Stats["seederBytes"]
			allEngineBytes += r.Stats["peerBytes"] + r.Stats["seederBytes"] + r.Stats["webseedBytes"]
			mu.Unlock()
		}()
	}
	wg.Wait()
	if failed.Load() || t.Failed() {
		return
	}
	// Most, not a figure: the rest comes from the gateway's seeder when the swarm makes no progress for a
	// while, and on this 2-core machine with five pages in one Chromium that depends on the load (63-92% over
	// 20 runs on 2026-12-03, with the engine of the day and the one before). bench crowd measures the share.
	if share := peerBytes / allEngineBytes; share < 0.5 {
		t.Errorf("browsers 2..5 got %.0f%% of heavy bytes from other browsers, want most", share*100)
	} else {
		t.Logf("browsers 2..5 got %.1f%% of heavy bytes from other browsers", share*100)
	}
	// The gateway's counters agree with the engines (reports arrive by beacon, so wait for them).
	deadline := time.Now().Add(10 * time.Second)
	for g.Bytes()[gateway.SourcePeers] < int64(peerBytes) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	bytes := g.Bytes()
	t.Logf("gateway bytes by source: %v", bytes)
	if bytes[gateway.SourcePeers] < int64(peerBytes) {
		t.Errorf("gateway counts %d peer bytes, engines of browsers 2..5 alone report %.0f", bytes[gateway.SourcePeers], peerBytes)
	}
	// What the engines say came from the gateway's seeder is what the seeder says it uploaded (it may have
	// sent a little more: requests cancelled in flight).
	if up := float64(bytes[gateway.SourceSeeder]); up < seederBytes || up > 1.1*seederBytes+256<<10 {
		t.Errorf("seeder uploaded %.0f bytes, engines received %.0f from it", up, seederBytes)
	}
	s.mu.Lock()
	for _, p := range examplesite.Heavy {
		if n := s.sent[p]; n > int64(len(s.files[p])) {
			t.Errorf("origin sent %s %d bytes: more than once", p, n)
		}
	}
	s.mu.Unlock()
	egress := bytes[gateway.SourceOrigin] + bytes[gateway.SourceGatewayHTTP] + bytes[gateway.SourceSeeder]
	// Browser 1 takes the assets once, and browsers 2..5 most of theirs from each other (above): at most 3x
	// for five visitors, where without the swarm it is 5x (1.57-2.23x over 16 runs on 2026-12-03).
	if egress > 3*heavy+64<<10 {
		t.Errorf("site egress %d bytes for five visitors; want at most 3x the heavy assets (%d)", egress, 3*heavy)
	}
	t.Logf("site egress for 5 visitors: %d bytes = %.2fx the heavy assets", egress, float64(egress)/float64(heavy))
}

// versionPadding is the BEP 47 padding in the gateway's current version, from its manifest: the bytes from
// each file's end to the piece boundary the next file starts on.
func versionPadding(t *testing.T, g *gateway.Server) int64 {
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
	var starts []int64
	for _, f := range m.Files {
		starts = append(starts, f.Offset)
	}
	var pad int64
	for _, f := range m.Files {
		end := f.Offset + f.Size
		for _, s := range starts {
			if s > end && s-end < m.PieceLength && s%m.PieceLength == 0 {
				pad += s - end
			}
		}
	}
	return pad
}

// TestReturningVisitorReadsItsStore: a second view of the same site version, in the same browser, takes its
// files from the pieces the first view kept in the browser's storage (docs/privacy.md): nothing is downloaded
// again, and the bytes are right.
func TestReturningVisitorReadsItsStore(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	g := startGateway(t, gateway.Config{Site: gateway.SiteConfig{Origin: origin, Root: dir}})
	pageURL := "http://" + g.Addr().String() + examplesite.PageHTML
	p := browsertest.Start(t).NewPage()

	first := loadPage(t, p, pageURL)
	checkHashes(t, s, "first view", first)
	if first.Via["photo"] != "p2p" || first.Via["tone"] != "p2p" {
		t.Fatalf("first view did not use the engine: %v (console %v)", first.Via, p.Console())
	}
	got := first.Stats["peerBytes"] + first.Stats["seederBytes"] + first.Stats["webseedBytes"]
	if got == 0 {
		t.Fatalf("first view downloaded nothing: %v", first.Stats)
	}
	seeded := g.Bytes()[gateway.SourceSeeder]
	// The engine writes a page view's pieces to storage once the page has its files: a visitor who comes back
	// later finds them there.
	waitStored(t, p, len(s.files[examplesite.ImagePNG])+len(s.files[examplesite.AudioWAV]))

	again := loadPage(t, p, pageURL) // the same tab: the same browser storage
	checkHashes(t, s, "second view", again)
	if again.Via["photo"] != "p2p" || again.Via["tone"] != "p2p" {
		t.Fatalf("second view did not use the engine: %v (console %v)", again.Via, p.Console())
	}
	t.Logf("first view %v; second view %v", first.Stats, again.Stats)
	if n := again.Stats["peerBytes"] + again.Stats["seederBytes"] + again.Stats["webseedBytes"]; n != 0 {
		t.Errorf("second view downloaded %.0f bytes again; want them from the browser's storage", n)
	}
	if n := g.Bytes()[gateway.SourceSeeder] - seeded; n != 0 {
		t.Errorf("the seeder sent the second view %d bytes", n)
	}
}

// waitStored waits until the page's engine has written at least n bytes of pieces to the browser's storage.
func waitStored(t *testing.T, p *browsertest.Page, n int) {
	t.Helper()
	// 30 s: in CI, with other packages' browsers on both cores, a second view once stored nothing in 15 s
	// (the page itself had loaded, every file correct); alone it passed four runs of four.
	stored, err := browsertest.Eval[float64](p, 35*time.Second, fmt.Sprintf(`(async () => {
		const deadline = Date.now() + 30000;
		while (window.swarmgate.stats().storedBytes < %d && Date.now() < deadline) await new Promise(r => setTimeout(r, 50));
		return window.swarmgate.stats().storedBytes;
	})()`, n))
	if err != nil || stored < float64(n) {
		t.Fatalf("the page stored %.0f bytes of %d (%v); console %v", stored, n, err, p.Console())
	}
}

// TestStoreKeepsTheCurrentVersionOnly: when the site changes, a visitor's next page view stores the new
// version's pieces and removes the old version's from the browser's storage, which would otherwise keep a copy
// of every version it saw.
func TestStoreKeepsTheCurrentVersionOnly(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	g := startGateway(t, gateway.Config{Site: gateway.SiteConfig{Origin: origin, Root: dir}})
	gw := "http://" + g.Addr().String()
	heavy := len(s.files[examplesite.ImagePNG]) + len(s.files[examplesite.AudioWAV])
	p := browsertest.Start(t).NewPage()
	stored := func() []string {
		t.Helper()
		names, err := browsertest.Eval[[]string](p, 10*time.Second, `(async () => {
			const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('swarmgate');
			const names = [];
			for await (const name of dir.keys()) names.push(name);
			return names.sort();
		})()`)
		if err != nil {
			t.Fatalf("reading the browser's storage: %v", err)
		}
		return names
	}

	checkHashes(t, s, "first view", loadPage(t, p, gw+examplesite.PageHTML))
	waitStored(t, p, heavy)
	first := g.Catalog().Current()
	if got := stored(); len(got) != 1 || got[0] != first.InfoHash.HexString() {
		t.Fatalf("after the first view the storage holds %v, want [%s]", got, first.InfoHash.HexString())
	}

	// The site gains a heavy asset: the gateway learns it and builds a new version.
	extra := make([]byte, 256<<10)
	for i := range extra {
		extra[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(dir, "media", "extra.bin"), extra, 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(gw + "/media/extra.bin")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	deadline := time.Now().Add(20 * time.Second)
	for g.Catalog().Current() == first && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	second := g.Catalog().Current()
	if second == first {
		t.Fatal("no new version after the site changed")
	}

	checkHashes(t, s, "second view", loadPage(t, p, gw+examplesite.PageHTML))
	waitStored(t, p, heavy)
	if got := stored(); len(got) != 1 || got[0] != second.InfoHash.HexString() {
		t.Fatalf("after a view of the new version the storage holds %v, want [%s] (the old one was %s)",
			got, second.InfoHash.HexString(), first.InfoHash.HexString())
	}
}

// TestWithoutWebRTCThePageLoadsOverHTTP: a browser without WebRTC, and one whose tracker is unreachable, still
// show every asset with the right bytes, and the page's scripts log no error.
func TestWithoutWebRTCThePageLoadsOverHTTP(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	b := browsertest.Start(t)

	check := func(name string, p *browsertest.Page, page string, wantVia string) {
		res := loadPage(t, p, page)
		checkHashes(t, s, name, res)
		for id, via := range res.Via {
			if via != wantVia {
				t.Errorf("%s: %s loaded via %s, want %s", name, id, via, wantVia)
			}
		}
		// The page's scripts must log nothing bad. (The browser itself logs a failed WebSocket connection, as it
		// does for any failed request; no page can prevent that, so those lines are only shown.)
		for _, line := range p.Console() {
			if strings.HasPrefix(line, "error:") || strings.HasPrefix(line, "exception:") || strings.HasPrefix(line, "warning:") {
				t.Errorf("%s: console: %s", name, line)
			}
		}
	}

	g := startGateway(t, gateway.Config{Site: gateway.SiteConfig{Origin: origin, Root: dir}})
	noRTC := b.NewPage()
	_, err := chromedp.Call(noRTC.Ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: "delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;",
	})
	if err != nil {
		t.Fatal(err)
	}
	check("without WebRTC", noRTC, "http://"+g.Addr().String()+examplesite.PageHTML, "http")

	// A tracker nobody answers at: the engine runs, finds no peer, and takes every piece from the webseed.
	g2 := startGateway(t, gateway.Config{
		Site:     gateway.SiteConfig{Origin: origin, Root: dir},
		Visitors: gateway.VisitorConfig{TrackerURL: deadTracker(t)},
	})
	check("tracker unreachable", b.NewPage(), "http://"+g2.Addr().String()+examplesite.PageHTML, "p2p")
	if n := g2.Bytes()[gateway.SourceGatewayHTTP]; n < int64(len(s.files[examplesite.ImagePNG])+len(s.files[examplesite.AudioWAV])) {
		t.Errorf("webseed served %d bytes; the heavy assets weigh more", n)
	}
}

// TestStreamsDoNotWaitForASilentSwarm: outside a crowd, a stream's waited-for piece is due at once until a peer
// has sent anything (the first bytes over WebRTC take a few hundred milliseconds), so the site's webseed brings
// it meanwhile. Here no peer ever answers (the tracker is unreachable) and the fallback is five minutes: the page
// still gets its elements from the engine at once, every byte from the webseed. Before, the streams waited for
// the fallback, well past the page's 90 s.
func TestStreamsDoNotWaitForASilentSwarm(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	g := startGateway(t, gateway.Config{
		Site:     gateway.SiteConfig{Origin: origin, Root: dir},
		Visitors: gateway.VisitorConfig{Fallback: 5 * time.Minute, TrackerURL: deadTracker(t)},
	})
	p := browsertest.Start(t).NewPage()
	start := time.Now()
	res := loadPage(t, p, "http://"+g.Addr().String()+examplesite.PageHTML)
	t.Logf("page's heavy assets in %v; engine stats %v", time.Since(start).Round(time.Millisecond), res.Stats)
	checkHashes(t, s, "page", res)
	if res.Via["photo"] != "p2p" || res.Via["tone"] != "p2p" {
		t.Fatalf("via %v; want both from the engine (console %v)", res.Via, p.Console())
	}
	heavy := float64(len(s.files[examplesite.ImagePNG]) + len(s.files[examplesite.AudioWAV]))
	// The worker's counts reach the page up to STATS_MS late (thread.ts): the last pieces may not be in them yet.
	counted, err := browsertest.Eval[float64](p, 10*time.Second, fmt.Sprintf(`(async () => {
		const deadline = Date.now() + 5000;
		while (window.swarmgate.stats().webseedBytes < %.0f && Date.now() < deadline) await new Promise(r => setTimeout(r, 50));
		return window.swarmgate.stats().webseedBytes;
	})()`, heavy))
	if err != nil {
		t.Fatal(err)
	}
	res.Stats["webseedBytes"] = counted
	if res.Stats["webseedBytes"] < heavy || res.Stats["seederBytes"]+res.Stats["peerBytes"] != 0 {
		t.Errorf("engine stats %v; want all %.0f bytes from the webseed, none from peers", res.Stats, heavy)
	}
}

// deadTracker is the URL of a tracker nobody answers at: a loopback port just closed.
func deadTracker(t *testing.T) string {
	t.Helper()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	return "ws://" + closed.Addr().String() + "/.swarm/announce"
}

// TestServiceWorkerServesFromTheEngine: once swarmgate's service worker controls a page, a script's own fetch
// of a heavy asset is answered from the page's engine, not over HTTP.
func TestServiceWorkerServesFromTheEngine(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	g := startGateway(t, gateway.Config{Site: gateway.SiteConfig{Origin: origin, Root: dir}})
	pageURL := "http://" + g.Addr().String() + examplesite.PageHTML
	b := browsertest.Start(t)
	first := b.NewPage()
	loadPage(t, first, pageURL)
	second := b.NewPage()
	if res := loadPage(t, second, pageURL); res.Thread != "worker" {
		t.Errorf("the engine's core ran on the %q thread; want a worker (Chromium transfers data channels)", res.Thread)
	}

	before := g.Bytes()
	got, err := browsertest.Eval[map[string]string](second, 60*time.Second, `(async () => {
		await navigator.serviceWorker.ready;
		if (!navigator.serviceWorker.controller)
			await new Promise(r => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true }));
		const res = await fetch('/media/photo.png');
		const buf = await res.arrayBuffer();
		const hex = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', buf)), x => x.toString(16).padStart(2, '0')).join('');
		const part = await fetch('/media/photo.png', { headers: { Range: 'bytes=10-19' } });
		return { via: res.headers.get('X-Swarmgate') || '', sha: hex, partStatus: String(part.status),
			partLen: String((await part.arrayBuffer()).byteLength), controller: navigator.serviceWorker.controller.scriptURL };
	})()`)
	if err != nil {
		t.Fatalf("%v; console %v", err, second.Console())
	}
	if got["via"] != "p2p" || got["sha"] != sha(s.files[examplesite.ImagePNG]) {
		t.Fatalf("service worker fetch: %v", got)
	}
	if got["partStatus"] != "206" || got["partLen"] != "10" {
		t.Fatalf("range through the service worker: %v", got)
	}
	after := g.Bytes()
	if after[gateway.SourceOrigin] != before[gateway.SourceOrigin] || after[gateway.SourceGatewayHTTP] != before[gateway.SourceGatewayHTTP] {
		t.Fatalf("the fetch went over HTTP: before %v after %v", before, after)
	}
}

// TestEngineRunsOnThePageWhereNoWorkerMay: a site whose Content-Security-Policy forbids workers (worker-src
// 'none': no service worker either) still gets its page from the swarm: the engine's core runs on the page,
// and the elements take object URLs, with the right bytes.
func TestEngineRunsOnThePageWhereNoWorkerMay(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	s.csp = "worker-src 'none'"
	origin, _ := url.Parse(s.URL)
	g := startGateway(t, gateway.Config{Site: gateway.SiteConfig{Origin: origin, Root: dir}})
	pageURL := "http://" + g.Addr().String() + examplesite.PageHTML
	p := browsertest.Start(t).NewPage()
	res := loadPage(t, p, pageURL)
	checkHashes(t, s, "page", res)
	if res.Via["photo"] != "p2p" || res.Via["tone"] != "p2p" || res.Thread != "page" {
		t.Fatalf("via %v, engine's core on the %q thread; want p2p from the core on the page (console %v)", res.Via, res.Thread, p.Console())
	}
	if got := res.Stats["seederBytes"] + res.Stats["peerBytes"]; got == 0 {
		t.Fatalf("nothing came from the swarm: %v", res.Stats)
	}
}

// TestCorruptPeerIsDropped: the only peer in the swarm sends garbage for every piece. The victim's engine
// rejects the pieces, drops the peer, and the page still shows the right bytes (from the webseed).
func TestCorruptPeerIsDropped(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	g := startGateway(t, gateway.Config{Site: gateway.SiteConfig{Origin: origin, Root: dir}})
	gw := "http://" + g.Addr().String()

	badSite := http.NewServeMux()
	badSite.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "testdata/badpeer.html")
	})
	badSite.HandleFunc("/webtorrent.min.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		http.ServeFile(w, r, browsertest.RepoFile(t, "node_modules/webtorrent/dist/webtorrent.min.js"))
	})
	bs := httptest.NewServer(badSite)
	defer bs.Close()

	resp, err := http.Get(gw + swarmapi.PathManifest)
	if err != nil {
		t.Fatal(err)
	}
	manifest, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	b := browsertest.Start(t)
	bad := b.NewPage()
	if err := bad.Do(20*time.Second, chromedp.Navigate(bs.URL)); err != nil {
		t.Fatal(err)
	}
	if _, err := browsertest.Eval[string](bad, 30*time.Second, "seedGarbage("+string(manifest)+")"); err != nil {
		t.Fatalf("bad peer: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for g.Tracker().Stats().Seeders < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}

	victim := b.NewPage()
	res := loadPage(t, victim, gw+examplesite.PageHTML)
	checkHashes(t, s, "victim", res)
	t.Logf("victim engine stats: %v", res.Stats)
	if res.Stats["droppedPeers"] < 1 {
		t.Fatalf("the corrupt peer was not dropped: %v", res.Stats)
	}
	if up, err := browsertest.Eval[float64](bad, 5*time.Second, "window.bad.uploaded"); err != nil || up == 0 {
		t.Fatalf("the bad peer sent nothing (%v, %v): the test proved nothing", up, err)
	}
}

// TestDashboardShowsTheStatus opens the dashboard in a browser while a visitor loads the site, checks that the
// figures on the page are those of the status API, and saves a screenshot.
func TestDashboardShowsTheStatus(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	g := startGateway(t, gateway.Config{
		Site: gateway.SiteConfig{Origin: origin, Root: dir, Name: "launch.example"},
	})
	gw := "http://" + g.Addr().String()
	b := browsertest.Start(t)
	loadPage(t, b.NewPage(), gw+examplesite.PageHTML)

	dash := b.NewPage()
	if err := dash.Do(20*time.Second, chromedp.EmulateViewport(1200, 900), chromedp.Navigate(gw+"/.swarm/dashboard")); err != nil {
		t.Fatal(err)
	}
	shown, err := browsertest.Eval[map[string]string](dash, 20*time.Second, `(async () => {
		while (!document.body.dataset.updated) await new Promise(r => setTimeout(r, 50));
		await new Promise(r => setTimeout(r, 1200)); // a second sample, so rates have a delta
		const t = id => document.getElementById(id).textContent;
		const rows = document.querySelectorAll('#swarms tbody tr');
		return { site: t('site'), state: t('state'), threshold: t('threshold'), peers: t('peers'),
			swarm: rows[0].cells[0].textContent, files: rows[0].cells[1].textContent, conn: t('conn') };
	})()`)
	if err != nil {
		t.Fatalf("%v; console %v", err, dash.Console())
	}
	resp, err := http.Get(gw + "/.swarm/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Site      string  `json:"site"`
		State     string  `json:"state"`
		Threshold float64 `json:"threshold"`
		Swarms    []struct {
			Version string `json:"version"`
			Files   int    `json:"files"`
		} `json:"swarms"`
		Tracker struct {
			Peers int `json:"peers"`
		} `json:"tracker"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := map[string]string{
		"site": st.Site, "state": st.State, "threshold": fmt.Sprintf("%.0f", st.Threshold),
		"peers": fmt.Sprint(st.Tracker.Peers), "swarm": st.Swarms[0].Version + " (current)",
		"files": fmt.Sprint(st.Swarms[0].Files), "conn": "live",
	}
	for k, v := range want {
		if shown[k] != v {
			t.Errorf("dashboard shows %s = %q, the status API says %q", k, shown[k], v)
		}
	}
	png, err := chromedp.Run(dash.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(os.TempDir(), "swarmgate-dashboard.png")
	if d := os.Getenv("SWARMGATE_ARTIFACTS"); d != "" {
		out = filepath.Join(d, "dashboard.png")
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard screenshot: %s (%d bytes)", out, len(png))
}

// TestStockWebTorrentDownloadsFromTheSeeder: the unmodified WebTorrent browser client, given the manifest's
// torrent and our tracker, downloads a site file from the gateway's Go seeder over WebRTC.
func TestStockWebTorrentDownloadsFromTheSeeder(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	g := startGateway(t, gateway.Config{Site: gateway.SiteConfig{Origin: origin, Root: dir}})
	resp, err := http.Get("http://" + g.Addr().String() + swarmapi.PathManifest)
	if err != nil {
		t.Fatal(err)
	}
	var m swarmapi.Manifest
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	manifest, _ := json.Marshal(m)
	site := http.NewServeMux()
	site.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, "testdata/webtorrent.html") })
	site.HandleFunc("/webtorrent.min.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		http.ServeFile(w, r, browsertest.RepoFile(t, "node_modules/webtorrent/dist/webtorrent.min.js"))
	})
	ws := httptest.NewServer(site)
	defer ws.Close()

	p := browsertest.Start(t).NewPage()
	if err := p.Do(20*time.Second, chromedp.Navigate(ws.URL)); err != nil {
		t.Fatal(err)
	}
	f := m.Files[examplesite.ImagePNG]
	got, err := browsertest.Eval[struct {
		SHA      string   `json:"sha"`
		Webseeds int      `json:"webseeds"`
		Peers    []string `json:"peers"`
	}](p, 60*time.Second, fmt.Sprintf("fetchFile(%s, %d)", manifest, f.Index))
	if err != nil {
		t.Fatalf("%v; console %v", err, p.Console())
	}
	if got.SHA != sha(s.files[examplesite.ImagePNG]) || got.Webseeds != 0 {
		t.Fatalf("stock client: %+v", got)
	}
	if up := g.Bytes()[gateway.SourceSeeder]; up < f.Size {
		t.Fatalf("the seeder uploaded %d bytes of a %d byte file", up, f.Size)
	}
	t.Logf("stock WebTorrent got %s over %v", examplesite.ImagePNG, got.Peers)
}
