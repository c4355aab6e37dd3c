package gateway_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/internal/browsertest"
	"github.com/swarmgate/swarmgate/internal/examplesite"
	"github.com/swarmgate/swarmgate/swarmapi"
)

// Pages the privacy tests add to the example site: the example page with an attribute on its script tag, and
// a page of the site where a visitor flips their own switch with the settings control of docs/privacy.md.
const (
	pageUploadOff = "/upload-off.html"
	pageSwarmOff  = "/swarm-off.html"
	pageSettings  = "/settings.html"
)

// TestPrivacy proves each of the visitor-respecting switches of docs/privacy.md in default headless Chromium:
// under each, a browser still shows every asset with the right bytes, and uploads nothing (or no more than the
// operator's cap). Every visitor also keeps a request log (every request and WebSocket its pages open, every
// peer connection's ICE servers), and the test fails on any host but the gateway's. One browser process serves
// every subtest; each visitor is a browser context of its own.
func TestPrivacy(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	home := string(s.files[examplesite.PageHTML])
	tag := `<script src="/.swarm/loader.js" async>`
	if !strings.Contains(home, tag) {
		t.Fatalf("the example page has no %s", tag)
	}
	variants := map[string]string{
		pageUploadOff: strings.Replace(home, tag, `<script src="/.swarm/loader.js" data-upload="off" async>`, 1),
		pageSwarmOff:  strings.Replace(home, tag, `<script src="/.swarm/loader.js" data-swarm="off" async>`, 1),
		pageSettings: `<!doctype html><title>Privacy settings</title><script src="/.swarm/loader.js"></script>` + "\n" +
			settingsSnippet(t),
	}
	for p, body := range variants {
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(p)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	origin, _ := url.Parse(s.URL)
	b := browsertest.Start(t)

	t.Run("Switches", func(t *testing.T) { testSwitches(t, b, s, origin, dir) })
	t.Run("CeilingCap", func(t *testing.T) {
		const ceiling = 1 << 20
		capped := testCap(t, b, s, gateway.Config{
			Site:     gateway.SiteConfig{Origin: origin, Root: dir},
			Visitors: gateway.VisitorConfig{UploadCeiling: ceiling},
		}, "ceiling")
		if capped.UploadedBytes > ceiling {
			t.Errorf("uploaded %.0f bytes past a ceiling of %d", capped.UploadedBytes, ceiling)
		}
	})
	t.Run("RatioCap", func(t *testing.T) {
		// About 0.5 MB of the page's 10.5 MB: the later browser takes only 1.3 to 2.6 MB from the first here
		// (the rest from the seeder and the webseed as its pieces come due), so at 0.25 (2.6 MB) the cap was
		// seldom reached.
		const ratio = 0.05
		capped := testCap(t, b, s, gateway.Config{
			Site:     gateway.SiteConfig{Origin: origin, Root: dir},
			Visitors: gateway.VisitorConfig{UploadRatio: ratio, IgnoreGPC: true},
		}, "ratio")
		if got := capped.received(); capped.UploadedBytes > ratio*got {
			t.Errorf("uploaded %.0f bytes, more than %.2f of the %.0f it received", capped.UploadedBytes, ratio, got)
		}
	})
	t.Run("OperatorSwitch", func(t *testing.T) { testOperatorSwitch(t, b, s, origin, dir) })
}

// settingsSnippet returns the settings control that docs/privacy.md offers site owners, so that the tests run it.
func settingsSnippet(t *testing.T) string {
	doc, err := os.ReadFile(browsertest.RepoFile(t, "docs/privacy.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```html\n<fieldset id=\"p2p\">")
	snippet, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/privacy.md has no settings control (```html <fieldset id=\"p2p\">)")
	}
	return `<fieldset id="p2p">` + snippet
}

// testSwitches: a first browser seeds normally; a browser under each visitor, page or browser switch loads
// the page from it while serving no one; a last browser, once the first has gone, finds only those and gets
// not one byte from any of them.
func testSwitches(t *testing.T, b *browsertest.Browser, s *site, origin *url.URL, dir string) {
	// The first browser may serve every other one here; the caps have subtests of their own.
	g := startGateway(t, gateway.Config{
		Site:     gateway.SiteConfig{Origin: origin, Root: dir},
		Visitors: gateway.VisitorConfig{UploadRatio: 100, UploadCeiling: 1 << 30},
	})
	gw := "http://" + g.Addr().String()

	first := newVisitor(t, b, g, "first")
	res := loadPage(t, first.page, gw+examplesite.PageHTML)
	checkHashes(t, s, first.name, res)
	if st := first.state(t); st.Mode != "p2p" || st.Page.Mode != "p2p" || len(st.ICE) == 0 {
		t.Fatalf("first browser: mode %+v, want p2p (and a peer connection)", st)
	}
	// The request log of a default visitor is not empty, so that its check (when the subtest ends) means
	// something.
	log := strings.Join(first.requests(), "\n")
	t.Logf("first browser's requests:\n%s", log)
	for _, want := range []string{swarmapi.PathManifest, swarmapi.PathLoader, "/.swarm/engine-", swarmapi.PathAnnounce} {
		if !strings.Contains(log, want) {
			t.Errorf("the first browser's request log lacks %s:\n%s", want, log)
		}
	}

	type switchCase struct {
		name, path   string
		mode, reason string
		emulate      []setup
		choose       string // the visitor's choice on pageSettings before the visit
	}
	cases := []switchCase{
		{name: "save-data", reason: "save-data", emulate: []setup{dataSaver}},
		{name: "cellular", reason: "cellular", emulate: []setup{initScript(
			`Object.defineProperty(NetworkInformation.prototype, 'type', { get: () => 'cellular', configurable: true })`)}},
		{name: "GPC", reason: "gpc", emulate: []setup{initScript(gpcScript)}},
		{name: "data-upload=off", path: pageUploadOff, reason: "page"},
		{name: "visitor download-only", reason: "visitor", choose: "download-only"},
		{name: "data-swarm=off", path: pageSwarmOff, mode: "off", reason: "page"},
		{name: "visitor opt-out", mode: "off", reason: "visitor", choose: "off"},
	}
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		downloaded []*visitor // the download-only visitors, which the last browser must get nothing from
		fromPeers  float64    // what they got from other browsers
	)
	for _, c := range cases {
		if c.path == "" {
			c.path = examplesite.PageHTML
		}
		if c.mode == "" {
			c.mode = "download-only"
		}
		v := newVisitor(t, b, g, c.name, c.emulate...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.choose != "" {
				if err := v.page.Do(20*time.Second, chromedp.Navigate(gw+pageSettings)); err != nil {
					t.Errorf("%s: %v", c.name, err)
					return
				}
				shown, err := browsertest.Eval[[]string](v.page, 10*time.Second, `(() => {
					const box = document.getElementById('p2p'), before = box.querySelector('output').textContent;
					box.querySelector('[value="`+c.choose+`"]').click();
					return [before, box.querySelector('output').textContent];
				})()`)
				want := []string{"Now: p2p", fmt.Sprintf("Now: %s (%s)", c.mode, c.reason)}
				if err != nil || fmt.Sprint(shown) != fmt.Sprint(want) {
					t.Errorf("%s: the settings control shows %q (%v), want %q", c.name, shown, err, want)
				}
			}
			start := time.Now()
			r := loadPage(t, v.page, gw+c.path)
			checkHashes(t, s, c.name, r)
			t.Logf("%s: loaded in %v", c.name, time.Since(start))
			st := v.state(t)
			if st.Page.Mode != c.mode || st.Page.Reason != c.reason {
				t.Errorf("%s: swarmgate.mode() = %+v, want %s (%s)", c.name, st.Page, c.mode, c.reason)
			}
			if c.mode == "off" {
				if r.Via["photo"] != "http" || r.Via["tone"] != "http" || r.Stats != nil {
					t.Errorf("%s: opted out, yet an engine ran: via %v, stats %v", c.name, r.Via, r.Stats)
				}
				return
			}
			if r.Via["photo"] != "p2p" || r.Via["tone"] != "p2p" {
				t.Errorf("%s: did not use the engine: %v", c.name, r.Via)
			}
			if st.Mode != c.mode || st.Reason != c.reason {
				t.Errorf("%s: stats() mode %s (%s), want %s (%s)", c.name, st.Mode, st.Reason, c.mode, c.reason)
			}
			t.Logf("%s: %+v", c.name, st)
			mu.Lock()
			downloaded = append(downloaded, v)
			fromPeers += st.PeerBytes
			mu.Unlock()
		}()
	}
	// The other browser signals lead to the same gate; a page without heavy assets shows that each is read, and
	// that the battery is watched: the browser serves again once it charges.
	signals := []struct{ name, script, reason, then string }{
		{"2g", `Object.defineProperty(NetworkInformation.prototype, 'effectiveType', { get: () => '2g', configurable: true })`,
			"slow-network", ""},
		{"DNT", `Object.defineProperty(Navigator.prototype, 'doNotTrack', { get: () => '1', configurable: true })`, "dnt", ""},
		{"low battery", `{
			const b = Object.assign(new EventTarget(), { charging: false, level: 0.12, chargingTime: Infinity, dischargingTime: 1800 });
			window.__battery = b;
			Navigator.prototype.getBattery = () => Promise.resolve(b);
		}`, "battery", `__battery.charging = true; __battery.dispatchEvent(new Event('chargingchange')); swarmgate.mode()`},
	}
	for _, c := range signals {
		v := newVisitor(t, b, g, c.name, initScript(c.script))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := v.page.Do(20*time.Second, chromedp.Navigate(gw+pageSettings)); err != nil {
				t.Errorf("%s: %v", c.name, err)
				return
			}
			m, err := browsertest.Eval[pageMode](v.page, 10*time.Second, `(async () => {
				for (let i = 0; i < 100 && swarmgate.mode().mode === 'p2p'; i++) await new Promise(r => setTimeout(r, 20));
				return swarmgate.mode();
			})()`)
			if err != nil || m != (pageMode{"download-only", c.reason}) {
				t.Errorf("%s: swarmgate.mode() = %+v (%v), want download-only (%s)", c.name, m, err, c.reason)
			}
			if c.then == "" {
				return
			}
			if m, err := browsertest.Eval[pageMode](v.page, 20*time.Second, c.then); err != nil || m.Mode != "p2p" {
				t.Errorf("%s: after %s, swarmgate.mode() = %+v (%v), want p2p", c.name, c.then, m, err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Download-only browsers still take from peers. (Which peers a browser meets is the tracker's random
	// choice, so one that met only download-only browsers takes from the seeder or the webseed instead.)
	if fromPeers == 0 {
		t.Errorf("the download-only browsers got nothing from other browsers")
	}
	if st := first.state(t); st.UploadedBytes == 0 {
		t.Fatalf("the first browser served no one; the download-only browsers' zero uploads prove nothing")
	}

	// The first browser leaves: only the download-only browsers and the gateway's seeder hold the site. A last
	// default browser meets them, and every byte it gets comes from the seeder.
	if err := first.page.Do(10*time.Second, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	last := newVisitor(t, b, g, "last")
	r := loadPage(t, last.page, gw+examplesite.PageHTML)
	checkHashes(t, s, last.name, r)
	st := last.state(t)
	deadline := time.Now().Add(10 * time.Second)
	for st.Peers < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		st = last.state(t)
	}
	t.Logf("last browser: %+v", st)
	if st.Peers < 2 {
		t.Errorf("the last browser met no download-only browser (%v peers): the test proves nothing", st.Peers)
	}
	if st.PeerBytes != 0 {
		t.Errorf("the last browser got %.0f bytes from download-only browsers", st.PeerBytes)
	}
	for _, v := range downloaded {
		if st := v.state(t); st.UploadedBytes != 0 {
			t.Errorf("%s: uploaded %.0f bytes in download-only mode", v.name, st.UploadedBytes)
		}
	}

	// The last visitor opts out with the page open: its engine leaves the swarm there and then.
	m, err := browsertest.Eval[pageMode](last.page, 20*time.Second, "swarmgate.optOut()")
	if err != nil || m != (pageMode{"off", "visitor"}) {
		t.Errorf("swarmgate.optOut() = %+v (%v)", m, err)
	}
	if st := last.state(t); st.Mode != "off" || st.Reason != "visitor" {
		t.Errorf("after optOut, stats() says %s (%s)", st.Mode, st.Reason)
	}
	for _, line := range last.page.Console() {
		if strings.HasPrefix(line, "exception:") || strings.HasPrefix(line, "error:") {
			t.Errorf("last browser: console: %s", line)
		}
	}
}

// testCap: a first browser, under the gateway's cap, serves a later one until the cap, and says so. The later
// one sends GPC: it is download-only, unless the operator decided otherwise.
func testCap(t *testing.T, b *browsertest.Browser, s *site, cfg gateway.Config, reason string) engineState {
	g := startGateway(t, cfg)
	gw := "http://" + g.Addr().String()
	first := newVisitor(t, b, g, "first")
	checkHashes(t, s, first.name, loadPage(t, first.page, gw+examplesite.PageHTML))

	later := newVisitor(t, b, g, "later", initScript(gpcScript))
	checkHashes(t, s, later.name, loadPage(t, later.page, gw+examplesite.PageHTML))
	want := map[bool]string{true: "p2p", false: "download-only"}[cfg.Visitors.IgnoreGPC]
	if st := later.state(t); st.Mode != want || st.PeerBytes == 0 {
		t.Errorf("later browser: mode %s (%s), want %s; %.0f bytes from the first", st.Mode, st.Reason, want, st.PeerBytes)
	}
	st := first.state(t)
	t.Logf("first browser: %+v", st)
	if !st.UploadCapped || st.CapReason != reason || st.UploadedBytes == 0 {
		t.Errorf("first browser: capped %v (%q) after uploading %.0f bytes; want capped by the %s", st.UploadCapped,
			st.CapReason, st.UploadedBytes, reason)
	}
	return st
}

// testOperatorSwitch: with --no-uploads every browser is download-only, a second browser gets nothing from the
// first; and browsers use the gateway's own STUN server and no other.
func testOperatorSwitch(t *testing.T, b *browsertest.Browser, s *site, origin *url.URL, dir string) {
	g := startGateway(t, gateway.Config{
		Net:      gateway.NetConfig{STUNListen: "127.0.0.1:0"},
		Site:     gateway.SiteConfig{Origin: origin, Root: dir},
		Visitors: gateway.VisitorConfig{NoUploads: true},
	})
	gw := "http://" + g.Addr().String()
	stun := fmt.Sprintf(`[{"urls":["stun:127.0.0.1:%d"]}]`, g.STUNPort())
	var prev *visitor
	for _, name := range []string{"first", "second"} {
		v := newVisitor(t, b, g, name)
		v.ice = stun
		r := loadPage(t, v.page, gw+examplesite.PageHTML)
		checkHashes(t, s, name, r)
		st := v.state(t)
		if st.Mode != "download-only" || st.Reason != "operator" || st.Page.Reason != "operator" {
			t.Errorf("%s: mode %+v, want download-only (operator)", name, st)
		}
		if len(st.ICE) == 0 {
			t.Errorf("%s: made no peer connection, so its ICE servers went unchecked", name)
		}
		if prev != nil {
			if st.PeerBytes != 0 {
				t.Errorf("%s: got %.0f bytes from a download-only browser", name, st.PeerBytes)
			}
			if pst := prev.state(t); pst.UploadedBytes != 0 {
				t.Errorf("%s: uploaded %.0f bytes in download-only mode", prev.name, pst.UploadedBytes)
			}
		}
		prev = v
	}
}

// pageMode is what swarmgate.mode() returns.
type pageMode struct {
	Mode   string `json:"mode"`
	Reason string `json:"reason"`
}

// engineState is a page's swarmgate.stats() (with its non-enumerable mode and cap fields) and swarmgate.mode().
type engineState struct {
	Mode          string   `json:"mode"`
	Reason        string   `json:"reason"`
	UploadCapped  bool     `json:"uploadCapped"`
	CapReason     string   `json:"capReason"`
	UploadedBytes float64  `json:"uploadedBytes"`
	PeerBytes     float64  `json:"peerBytes"`
	SeederBytes   float64  `json:"seederBytes"`
	WebseedBytes  float64  `json:"webseedBytes"`
	Peers         float64  `json:"peers"`
	Page          pageMode `json:"page"`
	ICE           []string `json:"ice"` // each peer connection's ICE servers, as JSON
}

func (s engineState) received() float64 { return s.PeerBytes + s.SeederBytes + s.WebseedBytes }

const stateJS = `(() => {
	const s = swarmgate.stats(), page = swarmgate.mode(), ice = window.__iceServers || [];
	if (!s) return { page, ice };
	return { ...s, mode: s.mode, reason: s.reason, uploadCapped: s.uploadCapped, capReason: s.capReason, page, ice };
})()`

// gpcScript makes the browser send Global Privacy Control, as far as the page can tell.
const gpcScript = `Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true, configurable: true })`

// setup prepares a visitor's browser context before its first page.
type setup func(p *browsertest.Page) error

func initScript(src string) setup {
	return func(p *browsertest.Page) error {
		_, err := chromedp.Call(p.Ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: src})
		return err
	}
}

// dataSaver turns on the browser's own data saver emulation: navigator.connection.saveData is true.
func dataSaver(p *browsertest.Page) error {
	on := true
	_, err := chromedp.Call(p.Ctx, emulation.SetDataSaverOverride, emulation.SetDataSaverOverrideParams{DataSaverEnabled: &on})
	return err
}

// recordICE keeps the ICE servers of every RTCPeerConnection the page creates, as JSON.
const recordICE = `(() => {
	const P = window.RTCPeerConnection;
	if (!P) return;
	window.__iceServers = [];
	window.RTCPeerConnection = class extends P {
		constructor(cfg, ...rest) {
			window.__iceServers.push(JSON.stringify((cfg && cfg.iceServers) || null));
			super(cfg, ...rest);
		}
	};
})()`

// visitor is one browser context. It logs the URL of every request and WebSocket its pages open, and when the
// test ends checks that all name the gateway and nothing else; its pages log the ICE servers of every peer
// connection, which state checks.
type visitor struct {
	name string
	page *browsertest.Page
	ice  string // the ICE servers every peer connection must have, as JSON

	mu   sync.Mutex
	urls []string
}

func newVisitor(t *testing.T, b *browsertest.Browser, g *gateway.Server, name string, emulate ...setup) *visitor {
	t.Helper()
	v := &visitor{name: name, page: b.NewPage(), ice: "[]"}
	record := func(ev any) {
		v.mu.Lock()
		defer v.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			v.urls = append(v.urls, e.Request.URL)
		case *network.EventWebSocketCreated:
			v.urls = append(v.urls, e.URL)
		}
	}
	// The page's requests, and its engine worker's (the tracker's socket, webseeds): a worker's are its own.
	err := chromedp.Listen(v.page.Ctx, record)
	if err == nil {
		err = v.page.ListenWorkers(record)
	}
	if err == nil {
		_, err = chromedp.Call(v.page.Ctx, network.Enable, network.EnableParams{})
	}
	for _, em := range append([]setup{initScript(recordICE)}, emulate...) {
		if err == nil {
			err = em(v.page)
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() {
		v.checkHosts(t, g.Addr().String())
		// Leave the swarm, so that later subtests do not share the machine with idle engines.
		_ = v.page.Do(5*time.Second, chromedp.Navigate("about:blank"))
	})
	return v
}

func (v *visitor) requests() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.urls...)
}

// checkHosts fails the test for any request to a host other than the gateway (data: and about: URLs load
// nothing, and a blob: URL names the origin that made it).
func (v *visitor) checkHosts(t *testing.T, gateway string) {
	t.Helper()
	urls := v.requests()
	for _, u := range urls {
		if strings.HasPrefix(u, "data:") || strings.HasPrefix(u, "about:") {
			continue
		}
		p, err := url.Parse(strings.TrimPrefix(u, "blob:"))
		if err != nil || p.Host != gateway {
			t.Errorf("%s: request to a host other than the gateway %s: %s", v.name, gateway, u)
		}
	}
	t.Logf("%s: %d requests, all to the gateway", v.name, len(urls))
}

// state reads the engine's stats and the loader's mode, and checks the ICE servers of the page's peer
// connections so far against the manifest's.
func (v *visitor) state(t *testing.T) engineState {
	t.Helper()
	st, err := browsertest.Eval[engineState](v.page, 20*time.Second, stateJS) // generous: a loaded CI machine
	if err != nil {
		t.Errorf("%s: %v", v.name, err)
	}
	for _, servers := range st.ICE {
		if servers != v.ice {
			t.Errorf("%s: a peer connection with ICE servers %s; the manifest has %s", v.name, servers, v.ice)
		}
	}
	return st
}
