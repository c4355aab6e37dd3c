package gateway_test

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/pion/turn/v4"

	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/internal/browsertest"
	"github.com/swarmgate/swarmgate/internal/examplesite"
	"github.com/swarmgate/swarmgate/internal/firefoxtest"
	"github.com/swarmgate/swarmgate/swarmapi"
	"github.com/swarmgate/swarmgate/uplink"
)

// recordPeerConnections is instrumentation run before the page's scripts: for every RTCPeerConnection the
// page makes it records in window.__ice the candidates each side offered (from the session descriptions),
// its states, and once connected the candidate types of the pair in use. It changes nothing else.
const recordPeerConnections = `(() => {
	const Native = window.RTCPeerConnection;
	if (!Native) return;
	const ice = window.__ice = [];
	const cands = d => ((d && d.sdp) || '').split(/\r?\n/).filter(l => l.startsWith('a=candidate:')).map(l => l.slice(2));
	window.RTCPeerConnection = class extends Native {
		constructor(...a) {
			super(...a);
			const r = { state: 'new', states: [], local: [], remote: [], pair: '' };
			ice.push(r);
			this.addEventListener('icegatheringstatechange', () => {
				if (this.iceGatheringState === 'complete') r.local = cands(this.localDescription);
			});
			this.addEventListener('connectionstatechange', async () => {
				r.state = this.connectionState;
				r.states.push(this.connectionState);
				r.remote = cands(this.remoteDescription);
				if (this.connectionState !== 'connected') return;
				const stats = await this.getStats(), byId = new Map();
				stats.forEach(s => byId.set(s.id, s));
				stats.forEach(s => {
					if (s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated) {
						const l = byId.get(s.localCandidateId) || {}, m = byId.get(s.remoteCandidateId) || {};
						r.pair = 'local ' + l.candidateType + ' ' + (l.address || '?') + ':' + l.port +
							' / remote ' + m.candidateType + ' ' + (m.address || '?') + ':' + m.port;
					}
				});
			});
		}
	};
})()`

// iceReportJS returns what recordPeerConnections recorded.
const iceReportJS = `window.__ice || []`

// iceConn is one entry of iceReportJS's report.
type iceConn struct {
	State  string   `json:"state"`
	States []string `json:"states"`
	Local  []string `json:"local"`
	Remote []string `json:"remote"`
	Pair   string   `json:"pair"`
}

func logICE(t *testing.T, who string, conns []iceConn) {
	t.Helper()
	for i, c := range conns {
		t.Logf("%s pc %d: %s; pair: %s\n  local:  %s\n  remote: %s", who, i, strings.Join(c.States, " → "), c.Pair,
			strings.Join(c.Local, "\n          "), strings.Join(c.Remote, "\n          "))
	}
}

// loadInFirefox loads the page in a Firefox tab and reports its heavy assets, as loadPage does in Chromium.
func loadInFirefox(p *firefoxtest.Page, u string) (pageResult, error) {
	if err := p.Goto(60*time.Second, u); err != nil {
		return pageResult{}, fmt.Errorf("navigate: %w", err)
	}
	res, err := firefoxtest.Eval[pageResult](p, 90*time.Second, loadedJS)
	if err != nil {
		return pageResult{}, fmt.Errorf("page: %w", err)
	}
	if !res.Ready {
		return pageResult{}, fmt.Errorf("page assets did not load; console: %v", p.Console())
	}
	return res, nil
}

// TestFirefoxVisitorGetsThePageFromTheSwarm: a default Firefox loads the example site through the gateway;
// its engine takes the heavy assets from the gateway's seeder over WebRTC, every byte verified, and the page
// shows them.
func TestFirefoxVisitorGetsThePageFromTheSwarm(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	// A generous fallback, as in TestCrowdOfBrowsersSharesTheSite: the seeder must not lose to the webseed
	// only because the machine is slow.
	g := startGateway(t, gateway.Config{
		Site:     gateway.SiteConfig{Origin: origin, Root: dir},
		Visitors: gateway.VisitorConfig{Fallback: 5 * time.Second},
	})
	pageURL := "http://" + g.Addr().String() + examplesite.PageHTML
	ff := firefoxtest.Start(t)
	t.Logf("%s", ff.Version)
	p := ff.NewPage()
	if err := p.Preload(recordPeerConnections); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := loadInFirefox(p, pageURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Firefox showed the page's heavy assets %v after navigating; engine stats %v", time.Since(start).Round(time.Millisecond), res.Stats)
	checkHashes(t, s, "firefox", res)
	if res.Via["photo"] != "p2p" || res.Via["tone"] != "p2p" {
		t.Fatalf("Firefox did not use the engine: %v (console %v)", res.Via, p.Console())
	}
	if res.Thread != "worker" {
		t.Errorf("the engine's core ran on the %q thread in Firefox; want a worker (Firefox transfers data channels)", res.Thread)
	}
	if res.Stats["seederBytes"] <= 0 {
		t.Errorf("Firefox took nothing from the gateway's seeder over WebRTC: %v", res.Stats)
	}
	conns, err := firefoxtest.Eval[[]iceConn](p, 30*time.Second, iceReportJS)
	if err != nil {
		t.Fatal(err)
	}
	logICE(t, "firefox", conns)
	if n := g.Bytes()[gateway.SourceSeeder]; n <= 0 {
		t.Errorf("gateway counts %d bytes from its seeder", n)
	}
	for _, line := range p.Console() {
		if strings.HasPrefix(line, "error:") || strings.HasPrefix(line, "exception:") {
			t.Errorf("firefox console: %s", line)
		}
	}
}

// chromiumPageWithICELog opens a Chromium tab that records its peer connections (recordPeerConnections).
func chromiumPageWithICELog(t *testing.T, b *browsertest.Browser) *browsertest.Page {
	t.Helper()
	p := b.NewPage()
	_, err := chromedp.Call(p.Ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: recordPeerConnections})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFirefoxAndChromiumOnOneHost: default Firefox and default Chromium visit one gateway from one host, in
// both orders, and the later visitor takes bytes from the earlier one over WebRTC. Both hide their host
// candidates behind mDNS names, so a connection needs one side to resolve the other's name over multicast
// DNS. What makes it work here (docs/browsers.md has the packet captures): Firefox resolves Chromium's
// names, since Chromium's mDNS responder announces and answers a name as soon as the candidate exists.
// Chromium often cannot resolve Firefox's: Firefox registers its names only when ICE checks start (for an
// offer, when the answer arrives), and Chromium asks once, on receiving the offer. So the test asserts that
// Firefox's connection to Chromium runs on a Chromium host name Firefox resolved.
func TestFirefoxAndChromiumOnOneHost(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	ff := firefoxtest.Start(t)
	cr := browsertest.Start(t)
	for _, firefoxFirst := range []bool{false, true} {
		name := "chromium then firefox"
		if firefoxFirst {
			name = "firefox then chromium"
		}
		t.Run(name, func(t *testing.T) {
			fconns, _ := visitBoth(t, s, dir, gateway.Config{}, ff, cr, firefoxFirst)
			// Firefox's connection to Chromium (the remote candidates that are mDNS names are Chromium's; the
			// seeder's are addresses) runs on a Chromium host name that Firefox resolved.
			resolved := false
			for _, c := range fconns {
				if c.State == "connected" && strings.Contains(c.Pair, "/ remote host ") && strings.HasSuffix(c.Pair[:strings.LastIndex(c.Pair, ":")], ".local") {
					resolved = true
				}
			}
			if !resolved {
				t.Errorf("no Firefox connection runs on a Chromium mDNS host name that Firefox resolved")
			}
		})
	}
}

// TestFirefoxAndChromiumWithSTUN: with a STUN server in the manifest, both browsers also offer a
// server-reflexive candidate, which carries a plain address (neither browser hides srflx candidates: the
// address is the one any peer sees). That is what connects visitors on different networks, where mDNS names
// never resolve. The STUN server listens on the machine's interface address, as a site's would on a public
// one. (With the gateway's own STUN server on 127.0.0.1, as a loopback test would start it, Chromium gathered
// a srflx candidate of 127.0.0.1 and Firefox none.) On this host (no NAT) the srflx address equals the host
// address, and the two browsers' connection ran on srflx candidates (logged, not asserted: ICE may as well
// pick the pair Firefox's mDNS resolution gives).
func TestFirefoxAndChromiumWithSTUN(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	stunURL := startInterfaceSTUN(t)
	ff := firefoxtest.Start(t)
	cr := browsertest.Start(t)
	fconns, cconns := visitBoth(t, s, dir, gateway.Config{Visitors: gateway.VisitorConfig{ICEServers: []swarmapi.ICEServer{{URLs: []string{stunURL}}}}}, ff, cr, false)
	for who, conns := range map[string][]iceConn{"firefox": fconns, "chromium": cconns} {
		srflx := false
		for _, c := range conns {
			for _, cand := range c.Local {
				if f := strings.Fields(cand); len(f) > 7 && f[7] == "srflx" && !strings.HasSuffix(f[4], ".local") {
					srflx = true
				}
			}
		}
		if !srflx {
			t.Errorf("%s offered no server-reflexive candidate with an address", who)
		}
	}
}

// startInterfaceSTUN serves STUN on the first non-loopback IPv4 address of the machine, port 0, until the
// test ends, and returns its stun: URL. It skips the test on a machine with no such address.
func startInterfaceSTUN(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var ip net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			ip = n.IP.To4()
			break
		}
	}
	if ip == nil {
		t.Skip("no non-loopback IPv4 address to serve STUN on")
	}
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := turn.NewServer(turn.ServerConfig{PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: pc}}, Realm: "test"})
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "stun:" + pc.LocalAddr().String()
}

// visitBoth loads the example site in a Chromium and a Firefox visitor, one after the other, through a new
// gateway made from cfg, and checks that both show the right bytes, that the later visitor took bytes from
// the earlier over WebRTC, and that neither browser showed an address in a host candidate. It returns each
// browser's peer connections, logged.
func visitBoth(t *testing.T, s *site, dir string, cfg gateway.Config, ff *firefoxtest.Browser, cr *browsertest.Browser, firefoxFirst bool) (fconns, cconns []iceConn) {
	t.Helper()
	cfg.Site.Origin, _ = url.Parse(s.URL)
	cfg.Site.Root = dir
	// The generous fallback keeps the later visitor on its peers while they deliver.
	cfg.Visitors.Fallback = 5 * time.Second
	// Once the first visitor has the page, the gateway sends at 256 KiB/s: its seeder, the later visitor's
	// peer of last resort, would otherwise send the whole page before the two browsers have connected (they
	// resolve each other's mDNS names, which takes Firefox and Chromium a while), and the test would not see
	// the browsers trade (it failed so in CI, once the engine signalled and said it was interested sooner).
	up, err := uplink.New(1 << 30)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Net.Uplink = up
	g := startGateway(t, cfg)
	pageURL := "http://" + g.Addr().String() + examplesite.PageHTML
	fp := ff.NewPage()
	if err := fp.Preload(recordPeerConnections); err != nil {
		t.Fatal(err)
	}
	cp := chromiumPageWithICELog(t, cr)
	loadFirefox := func() pageResult {
		res, err := loadInFirefox(fp, pageURL)
		if err != nil {
			t.Fatal(err)
		}
		checkHashes(t, s, "firefox", res)
		return res
	}
	var first, second pageResult
	slow := func() {
		if err := up.SetRate(256 << 10); err != nil {
			t.Fatal(err)
		}
	}
	if firefoxFirst {
		first = loadFirefox()
		slow()
		second = loadPage(t, cp, pageURL)
		checkHashes(t, s, "chromium", second)
	} else {
		first = loadPage(t, cp, pageURL)
		checkHashes(t, s, "chromium", first)
		slow()
		second = loadFirefox()
	}
	t.Logf("first visitor: %v", first.Stats)
	t.Logf("second visitor: %v", second.Stats)
	fconns, err = firefoxtest.Eval[[]iceConn](fp, 30*time.Second, iceReportJS)
	if err != nil {
		t.Fatal(err)
	}
	logICE(t, "firefox", fconns)
	cconns, err = browsertest.Eval[[]iceConn](cp, 30*time.Second, iceReportJS)
	if err != nil {
		t.Fatal(err)
	}
	logICE(t, "chromium", cconns)

	if second.Stats["peerBytes"] <= 0 {
		t.Errorf("the second visitor took nothing from the first over WebRTC: %v", second.Stats)
	}
	// Default preferences: neither browser shows a host address in a candidate.
	for who, conns := range map[string][]iceConn{"firefox": fconns, "chromium": cconns} {
		for _, c := range conns {
			for _, cand := range c.Local {
				if f := strings.Fields(cand); len(f) > 7 && f[7] == "host" && !strings.HasSuffix(f[4], ".local") {
					t.Errorf("%s offered a host candidate with its address: %s", who, cand)
				}
			}
		}
	}
	return fconns, cconns
}
