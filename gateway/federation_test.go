package gateway_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/internal/browsertest"
	"github.com/swarmgate/swarmgate/internal/examplesite"
	"github.com/swarmgate/swarmgate/internal/testutil"
	"github.com/swarmgate/swarmgate/steer"
	"github.com/swarmgate/swarmgate/swarmapi"
	"github.com/swarmgate/swarmgate/tracker"
	"github.com/swarmgate/swarmgate/uplink"
)

const siteName = "launch.example.test"

// samePort finds a TCP port free on all of the given loopback addresses, so that DNS-steered clients reach
// every member on the site's one port, as they would on port 80 or 443.
func samePort(t *testing.T, hosts ...string) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", hosts[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ok := true
		var held []net.Listener
		for _, h := range hosts[1:] {
			l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", h, port))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		ln.Close()
		for _, l := range held {
			l.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no port free on every host")
	return 0
}

// member runs one federation member's gateway until the test ends or stop is called.
type member struct {
	g    *gateway.Server
	stop func()
}

func runMember(t *testing.T, cfg gateway.Config) *member {
	t.Helper()
	cfg.Logger = testLogger(t)
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Visitors.P2P == "" {
		cfg.Visitors.P2P = gateway.P2PAlways // pages load before the crowd in some of these tests
	}
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("member: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &member{g: g, stop: stop}
}

// answers asks our DNS server for the site's A records, in the order of the answer.
func answers(t *testing.T, server netip.AddrPort) []netip.Addr {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(siteName), dns.TypeA)
	r, err := dns.Exchange(m, server.String())
	if err != nil {
		t.Fatalf("dns: %v", err)
	}
	var out []netip.Addr
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			addr, _ := netip.AddrFromSlice(a.A.To4())
			out = append(out, addr)
		}
	}
	return out
}

// resolve is the site's A records, sorted.
func resolve(t *testing.T, server netip.AddrPort) []netip.Addr {
	t.Helper()
	out := answers(t, server)
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// firstAnswer is the first address a client gets for the site: the one it connects to.
func firstAnswer(t *testing.T, server netip.AddrPort) netip.Addr {
	t.Helper()
	out := answers(t, server)
	if len(out) == 0 {
		t.Fatal("dns: no address for the site")
	}
	return out[0]
}

// webseedsNow asks the gateway on 127.0.0.1:port for a version's webseeds and checks the status.
func webseedsNow(t *testing.T, port int, version string, status int) swarmapi.Webseeds {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s?version=%s", port, swarmapi.PathWebseeds, url.QueryEscape(version)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var w swarmapi.Webseeds
	if resp.StatusCode != status {
		t.Fatalf("webseeds of %q: status %d, want %d", version, resp.StatusCode, status)
	}
	if status == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// TestFlashCrowdRecruitsHelpersAndSteersDNS is the paper's scenario end to end on loopback: alpha's gateway
// sees a crowd, beta and gamma help, DNS steers plain HTTP clients to them, a killed helper is withdrawn, and
// when the load stops the records are withdrawn and the helpers released after the TTL.
func TestFlashCrowdRecruitsHelpersAndSteersDNS(t *testing.T) {
	if _, err := net.Listen("tcp", "127.0.0.3:0"); err != nil {
		t.Fatalf("127.0.0.3 is not usable here: %v", err)
	}
	port := samePort(t, "127.0.0.1", "127.0.0.2", "127.0.0.3")
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)

	keys, fed := newFederation(t, port, "alpha", "beta", "gamma")

	dnsSrv, err := steer.NewServer(steer.ServerConfig{Zone: "example.test", Addr: "127.0.0.1:0", TTL: time.Second,
		NameServers: []steer.NameServer{{Name: "ns1.example.test", Addrs: addrs("127.0.0.1")}}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	// alpha's gateway runs the DNS server it publishes to.

	health := 300 * time.Millisecond
	fedCfg := func(n string) *gateway.FederationConfig {
		return &gateway.FederationConfig{Key: keys[n], Members: fed, HealthInterval: health}
	}
	alpha := runMember(t, gateway.Config{
		Net:        gateway.NetConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port), PeerListen: "127.0.0.1:0"},
		Site:       gateway.SiteConfig{Origin: origin, Root: dir, Name: siteName},
		Federation: fedCfg("alpha"), DNS: dnsSrv,
		Monitor: monitor.Config{Window: time.Second, Threshold: 10, ClientRate: -1, EnterAfter: 300 * time.Millisecond, ExitAfter: 3 * time.Second}})
	beta := runMember(t, gateway.Config{
		Net:        gateway.NetConfig{Listen: fmt.Sprintf("127.0.0.2:%d", port), PeerListen: "127.0.0.2:0"},
		Federation: fedCfg("beta")})
	gamma := runMember(t, gateway.Config{
		Net:        gateway.NetConfig{Listen: fmt.Sprintf("127.0.0.3:%d", port), PeerListen: "127.0.0.3:0"},
		Federation: fedCfg("gamma")})
	_ = beta

	testutil.Eventually(t, 10*time.Second, "normal-state DNS", func() bool { return slices.Equal(resolve(t, dnsSrv.Addr()), addrs("127.0.0.1")) })

	// Unsigned, forged and replayed help requests change nothing: beta does not start serving the site.
	betaURL := fmt.Sprintf("http://127.0.0.2:%d", port)
	req := &federation.HelpRequest{Site: siteName, Version: "v", InfoHash: fmt.Sprintf("%040x", 1), Origin: "http://127.0.0.1/",
		Tracker: "ws://127.0.0.1/.swarm/announce", Capacity: 10, Until: time.Now().Add(time.Hour)}
	forged, _ := federation.Seal(keys["gamma"], "alpha", "beta", federation.KindHelpRequest, req) // alpha's name, gamma's key
	genuine, _ := federation.Seal(keys["alpha"], "alpha", "beta", federation.KindHelpRequest, req)
	for name, body := range map[string][]byte{"unsigned": []byte(`{"kind":"help-request","from":"alpha"}`), "forged": forged} {
		resp, err := http.Post(betaURL+federation.Path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Fatalf("%s help request: status %d", name, resp.StatusCode)
		}
	}
	resp, err := http.Post(betaURL+federation.Path, "application/json", bytes.NewReader(genuine))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // beta declines: it cannot fetch a job for an infohash alpha does not have
	resp, err = http.Post(betaURL+federation.Path, "application/json", bytes.NewReader(genuine))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replayed help request: status %d", resp.StatusCode)
	}
	if r, err := http.Get(betaURL + examplesite.ImagePNG); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Fatal("beta serves the site without a genuine request")
		}
	}

	// A visitor views the page before the crowd: the gateway notes the order of its heavy elements, which
	// the helpers' job passes on to them to fetch first.
	if r, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil {
		t.Fatal(err)
	} else {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	stopLoad := startLoad(t, fmt.Sprintf("http://127.0.0.1:%d/style.css", port))

	testutil.Eventually(t, 45*time.Second, "both helpers in DNS", func() bool {
		return slices.Equal(resolve(t, dnsSrv.Addr()), addrs("127.0.0.1", "127.0.0.2", "127.0.0.3"))
	})
	helpers, took := alpha.g.Helpers()
	t.Logf("crowd start to first helper in DNS: %v; helpers %+v", took, helpers)
	// A helper is in DNS while it fetches, and tells the site when it holds the whole version.
	testutil.Eventually(t, 45*time.Second, "both helpers fetched", func() bool {
		hs, _ := alpha.g.Helpers()
		return len(hs) == 2 && hs[0].Fetched && hs[1].Fetched
	})

	// The helpers also joined the site's swarm on alpha's tracker, to seed visitors' browsers over WebRTC.
	v := alpha.g.Catalog().Current()

	// Members were asked one after another, and a job lists the helpers that accepted: a helper asked later
	// fetched from those before it too. Each is listed at its own address.
	jresp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s%s", port, swarmapi.PathJob, v.InfoHash.HexString()))
	if err != nil {
		t.Fatal(err)
	}
	var job swarmapi.Job
	err = json.NewDecoder(jresp.Body).Decode(&job)
	jresp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, p := range job.Peers {
		h, _, err := net.SplitHostPort(p)
		if err != nil {
			t.Fatalf("job peer %q: %v", p, err)
		}
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	if !slices.Equal(hosts, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}) {
		t.Errorf("job peers %v: want the site's seeder and both helpers'", job.Peers)
	}
	if want := []string{examplesite.ImagePNG, examplesite.AudioWAV}; !slices.Equal(job.First, want) {
		t.Errorf("job's files to fetch first %q, want the page's %q", job.First, want)
	}
	testutil.Eventually(t, 10*time.Second, "helpers in the site's swarm", func() bool {
		seeders, _ := alpha.g.Tracker().SwarmCounts(tracker.ID(v.InfoHash))
		return seeders >= 3 // alpha's seeder, beta's and gamma's
	})

	// Browsers arriving now are told the crowd: they wait longer for the swarm before using webseeds, and the
	// webseeds are the helpers' (the site's own link is the one that is full).
	var m swarmapi.Manifest
	getJSON(t, fmt.Sprintf("http://127.0.0.1:%d%s", port, swarmapi.PathManifest), &m)
	wantSeeds := []string{fmt.Sprintf("http://127.0.0.2:%d%s", port, swarmapi.PathSeed), fmt.Sprintf("http://127.0.0.3:%d%s", port, swarmapi.PathSeed)}
	if m.Mode != "crowd" || !slices.Equal(m.Webseeds, wantSeeds) || m.FallbackMs != 4*gateway.DefaultFallback.Milliseconds() || !m.WebseedsNow {
		t.Errorf("manifest in a crowd: mode %q, webseeds %v (want %v, now %v), fallback %d ms", m.Mode, m.Webseeds, wantSeeds, m.WebseedsNow, m.FallbackMs)
	}
	// Engines of pages that loaded before the helpers were ready learn of them by asking again.
	if w := webseedsNow(t, port, v.Name, http.StatusOK); !w.Now || !slices.Equal(w.Webseeds, wantSeeds) || w.Version != v.Name {
		t.Errorf("webseeds in a crowd: %+v, want %v now", w, wantSeeds)
	}
	webseedsNow(t, port, "no-such-version", http.StatusNotFound)
	webseedsNow(t, port, "", http.StatusBadRequest)

	// The site's own address stays in the answers, but with helpers ready it has the least weight: it has no
	// capacity to spare in a crowd, so nearly every new client goes to a helper.
	originFirst := 0
	const queries = 200
	for range queries {
		if firstAnswer(t, dnsSrv.Addr()) == netip.MustParseAddr("127.0.0.1") {
			originFirst++
		}
	}
	if originFirst > queries/10 {
		t.Errorf("the origin came first in %d of %d answers during the crowd; want few (weight 1 against the helpers' capacity)", originFirst, queries)
	}

	// A client without P2P that resolves through our DNS gets the same bytes from each helper.
	get := func(ip netip.Addr, path string) []byte {
		t.Helper()
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s:%d%s", ip, port, path), nil)
		req.Host = siteName
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("GET %s from %s: %v", path, ip, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s from %s: %d", path, ip, resp.StatusCode)
		}
		return b
	}
	page := get(netip.MustParseAddr("127.0.0.1"), examplesite.PageHTML)
	for _, ip := range resolve(t, dnsSrv.Addr()) {
		for _, p := range examplesite.Heavy {
			if sha256.Sum256(get(ip, p)) != sha256.Sum256(s.files[p]) {
				t.Fatalf("%s from %s differs from the origin's", p, ip)
			}
		}
		if !bytes.Equal(get(ip, examplesite.PageHTML), page) {
			t.Fatalf("the page from %s differs from the gateway's", ip)
		}
	}

	// A helper killed mid-crowd is withdrawn within a health interval or two; the survivors keep serving.
	gamma.stop()
	killed := time.Now()
	testutil.Eventually(t, 10*time.Second, "gamma withdrawn", func() bool {
		return slices.Equal(resolve(t, dnsSrv.Addr()), addrs("127.0.0.1", "127.0.0.2"))
	})
	t.Logf("killed helper withdrawn after %v (health interval %v)", time.Since(killed), health)
	for _, ip := range resolve(t, dnsSrv.Addr()) {
		get(ip, examplesite.ImagePNG)
	}

	// The load stops: ending withdraws the helpers' records; after the TTL the crowd is over, and once no page
	// has asked for webseeds for 10 s (this test asked above, as a loading page would) beta is released.
	stopLoad()
	testutil.Eventually(t, 30*time.Second, "records withdrawn", func() bool {
		return slices.Equal(resolve(t, dnsSrv.Addr()), addrs("127.0.0.1"))
	})
	testutil.Eventually(t, 30*time.Second, "normal state", func() bool { return alpha.g.Monitor().Status().State == monitor.Normal })
	testutil.Eventually(t, 30*time.Second, "beta released", func() bool {
		for _, h := range mustHelpers(alpha.g) {
			if h.Name == "beta" && h.State != "released" {
				return false
			}
		}
		return true
	})
	ownSeed := []string{fmt.Sprintf("http://127.0.0.1:%d%s", port, swarmapi.PathSeed)}
	if w := webseedsNow(t, port, v.Name, http.StatusOK); w.Now || !slices.Equal(w.Webseeds, ownSeed) {
		t.Errorf("webseeds after the crowd: %+v, want the site's own %v", w, ownSeed)
	}
}

// newFederation makes a key for each name and a federation file listing member i as http://127.0.0.<i+1>:port
// with that address. The first member's site is siteName, each other's "<name>.example.test"; every member
// is on loopback, so each says allowPrivate.
func newFederation(t *testing.T, port int, names ...string) (map[string]ed25519.PrivateKey, *federation.Federation) {
	t.Helper()
	return newFederationWith(t, port, nil, names...)
}

// newFederationWith is newFederation with edit applied to each member's entry (a JSON object) first.
func newFederationWith(t *testing.T, port int, edit func(i int, m map[string]any), names ...string) (map[string]ed25519.PrivateKey, *federation.Federation) {
	t.Helper()
	keys := map[string]ed25519.PrivateKey{}
	var members []map[string]any
	for i, n := range names {
		k, err := federation.LoadOrCreateKey(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		keys[n] = k
		site := n + ".example.test"
		if i == 0 {
			site = siteName
		}
		m := map[string]any{"name": n, "url": fmt.Sprintf("http://127.0.0.%d:%d", i+1, port),
			"key": federation.FormatPublicKey(k.Public().(ed25519.PublicKey)), "addresses": []string{fmt.Sprintf("127.0.0.%d", i+1)},
			"sites": []string{site}, "allowPrivate": true}
		if edit != nil {
			edit(i, m)
		}
		members = append(members, m)
	}
	file, err := json.Marshal(map[string]any{"members": members})
	if err != nil {
		t.Fatal(err)
	}
	fed, err := federation.ParseFederation(file)
	if err != nil {
		t.Fatal(err)
	}
	return keys, fed
}

// startLoad puts a bounded load on url, enough for a crowd: at most 60 s and 20,000 requests, from 8
// clients, all from one address: the gateways it loads count every request (monitor.Config.ClientRate -1).
// stop ends it and waits for the clients; it also runs when the test ends.
func startLoad(t *testing.T, url string) (stop func()) {
	var done atomic.Bool
	var sent atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(60 * time.Second)
	for i := range 8 {
		wg.Go(func() {
			// Each client from a loopback host of its own: one client's demand counts only up to its share.
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(i+1))}}
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
			for !done.Load() && time.Now().Before(deadline) && sent.Add(1) <= 20000 {
				resp, err := c.Get(url)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				time.Sleep(20 * time.Millisecond)
			}
			c.CloseIdleConnections()
		})
	}
	stop = func() { done.Store(true); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

func mustHelpers(g *gateway.Server) []gateway.HelperStatus {
	h, _ := g.Helpers()
	return h
}

// getJSON decodes the JSON body of a GET of u into v.
func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// crowdAfterPageLoads is the setup of the tests of a page that is loading when a crowd comes: alpha serves the
// site on an uplink of 1 MiB/s, which goes to the helper beta first while it fetches, so the page cannot finish
// from the site meanwhile; the fallback is long enough that the engine never turns to the site's own webseed
// on its own. beta sends through betaUplink (nil: unshaped). The page's engine joins the swarm, then a load on
// alpha makes the crowd; the crowd ends exitAfter after the load stops, the normal state comes 3 s later, and
// the helper is released once the page no longer loads from it, or loadingHold after that (0: the default).
type loadingPage struct {
	s        *site
	base     string // alpha's URL
	alpha    *member
	page     *browsertest.Page
	loaded   chan loaded
	stopLoad func()
}

type loaded struct {
	res pageResult
	err error
}

func crowdAfterPageLoads(t *testing.T, betaUplink *uplink.Uplink, exitAfter, loadingHold time.Duration) *loadingPage {
	t.Helper()
	port := samePort(t, "127.0.0.1", "127.0.0.2")
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	keys, fed := newFederation(t, port, "alpha", "beta")
	fedCfg := func(n string) *gateway.FederationConfig {
		return &gateway.FederationConfig{Key: keys[n], Members: fed, HealthInterval: 300 * time.Millisecond, LoadingHold: loadingHold}
	}
	up, err := uplink.New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	alpha := runMember(t, gateway.Config{
		Net:        gateway.NetConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port), PeerListen: "127.0.0.1:0", Uplink: up},
		Site:       gateway.SiteConfig{Origin: origin, Root: dir, Name: siteName},
		Visitors:   gateway.VisitorConfig{Fallback: 10 * time.Minute},
		Federation: fedCfg("alpha"),
		Monitor: monitor.Config{Window: time.Second, Threshold: 10, ClientRate: -1, EnterAfter: 300 * time.Millisecond, ExitAfter: exitAfter,
			EndingHold: 3 * time.Second}})
	runMember(t, gateway.Config{
		Net:        gateway.NetConfig{Listen: fmt.Sprintf("127.0.0.2:%d", port), PeerListen: "127.0.0.2:0", Uplink: betaUplink},
		Federation: fedCfg("beta")})
	testutil.Eventually(t, 10*time.Second, "the site's first version", func() bool { return alpha.g.Catalog().Current() != nil })
	v := alpha.g.Catalog().Current()

	lp := &loadingPage{s: s, base: fmt.Sprintf("http://127.0.0.1:%d", port), alpha: alpha, page: browsertest.Start(t).NewPage(),
		loaded: make(chan loaded, 1)}
	go func() {
		res, err := tryLoadPage(lp.page, fmt.Sprintf("http://127.0.0.1:%d%s", port, examplesite.PageHTML))
		lp.loaded <- loaded{res, err}
	}()
	// Once the page's engine has joined the swarm, the crowd comes.
	testutil.Eventually(t, 30*time.Second, "the page's engine in the swarm", func() bool {
		_, leechers := alpha.g.Tracker().SwarmCounts(tracker.ID(v.InfoHash))
		return leechers >= 1
	})
	if alpha.g.Monitor().Status().State != monitor.Normal {
		t.Fatal("crowd before the load began")
	}
	lp.stopLoad = startLoad(t, fmt.Sprintf("http://127.0.0.1:%d/style.css", port))
	return lp
}

// result waits for the page and checks that it shows the site's bytes through the engine.
func (lp *loadingPage) result(t *testing.T) pageResult {
	t.Helper()
	l := <-lp.loaded
	if l.err != nil {
		t.Fatal(l.err)
	}
	res := l.res
	checkHashes(t, lp.s, "the page", res)
	t.Logf("engine stats: %v", res.Stats)
	helpers, took := lp.alpha.g.Helpers()
	t.Logf("helpers %+v, first ready %v after the crowd began", helpers, took)
	if res.Via["photo"] != "p2p" || res.Via["tone"] != "p2p" {
		t.Fatalf("the page fell back to HTTP: %v (console %v)", res.Via, lp.page.Console())
	}
	return res
}

// TestLoadingPageTakesAHelpersWebseed: a page whose engine began loading before the crowd, and so before any
// helper was ready, takes the rest of the site from a helper's webseed once one is: the engine asks the gateway
// for webseeds while it loads, and the helper's webseed, another origin than the page's, allows the reads.
func TestLoadingPageTakesAHelpersWebseed(t *testing.T) {
	// The helper's link (unlimited in effect) counts what the helper sent: the page is the only one it serves.
	helperLink, err := uplink.New(1 << 30)
	if err != nil {
		t.Fatal(err)
	}
	lp := crowdAfterPageLoads(t, helperLink, time.Minute, 0)
	defer lp.stopLoad()
	lp.result(t)
	// The helper's seeder also joins the swarm while it fetches, and the engine (js/src/p2p) trades with it as
	// with any peer: the page may have the rest from it, as a peer, before the helper's webseed is ready. The
	// page's own counts cannot tell: in normal times, before the crowd, it took what it waited for from the
	// site's own webseed until a peer could send it.
	if n := helperLink.Sent(); n < 256<<10 {
		t.Errorf("the helper sent %d bytes; want the page's rest from its webseed or its seeder; console %v", n, lp.page.Console())
	}
}

// TestLoadingPageGoesBackToTheSitesWebseed: a page that takes the site from a helper's webseed when the crowd
// ends keeps the helper while the ending state lasts (a new page view is given the site's own webseed then),
// goes back to the site's own webseed (or its seeder, a peer holding every piece) for the rest once the helper
// is released (here LoadingHold, a second after the crowd, releases it while the page still loads), and
// completes.
func TestLoadingPageGoesBackToTheSitesWebseed(t *testing.T) {
	// beta's link is slow enough that the page is still loading from it when the crowd ends.
	slow, err := uplink.New(192 << 10)
	if err != nil {
		t.Fatal(err)
	}
	lp := crowdAfterPageLoads(t, slow, time.Second, time.Second)
	// The page's webseed bytes alone do not say whose they are: in normal times, before the crowd, the engine
	// took what it waited for from the site's own webseed until a peer could send it. What it takes from
	// webseeds once the helper is ready is the helper's (the site's own is not used in a crowd: the fallback
	// is ten minutes).
	testutil.Eventually(t, 60*time.Second, "the helper ready", func() bool {
		hs, _ := lp.alpha.g.Helpers()
		return len(hs) > 0 && hs[0].State == "ready"
	})
	webseedBytes := func() float64 {
		n, err := browsertest.Eval[float64](lp.page, 5*time.Second,
			`window.swarmgate && window.swarmgate.stats() ? window.swarmgate.stats().webseedBytes : 0`)
		if err != nil {
			return -1
		}
		return n
	}
	w0 := webseedBytes()
	testutil.Eventually(t, 60*time.Second, "the page loading from the helper's webseed", func() bool {
		return w0 >= 0 && webseedBytes() >= w0+256<<10
	})
	lp.stopLoad()
	// Once the crowd has ended, a new page view is given the site's own webseed, while the loading page keeps
	// the helper until it is released.
	testutil.Eventually(t, 30*time.Second, "the crowd ending", func() bool {
		return lp.alpha.g.Monitor().Status().State == monitor.Ending
	})
	base := lp.base
	var m swarmapi.Manifest
	getJSON(t, base+swarmapi.PathManifest, &m)
	var ws swarmapi.Webseeds
	getJSON(t, base+swarmapi.PathWebseeds+"?version="+url.QueryEscape(m.Version), &ws)
	if st := lp.alpha.g.Monitor().Status().State; st == monitor.Ending &&
		(m.WebseedsNow || len(m.Webseeds) != 1 || !strings.HasPrefix(m.Webseeds[0], base) || !ws.Now || len(ws.Webseeds) != 1 ||
			strings.HasPrefix(ws.Webseeds[0], base)) {
		t.Errorf("crowd ending: a new page view's webseeds %q (now %v), a loading page's %q (now %v); want the site's own, "+
			"and the helper's", m.Webseeds, m.WebseedsNow, ws.Webseeds, ws.Now)
	}
	testutil.Eventually(t, 30*time.Second, "the helper released", func() bool {
		return lp.alpha.g.Monitor().Status().State == monitor.Normal
	})
	// The site's machine: its webseed, and its WebRTC seeder, which an engine may ask for the same pieces first
	// once no other peer holds them (it did, once, in CI: the whole rest came from the seeder).
	site := func() (webseed, seeder int64) {
		b := lp.alpha.g.Bytes()
		return b[gateway.SourceGatewayHTTP], b[gateway.SourceSeeder]
	}
	w1, s1 := site()
	select {
	case l := <-lp.loaded:
		t.Fatalf("the page was complete before the helper was released: %v (%v)", l.res.Stats, l.err)
	default:
	}
	lp.result(t)
	if st := lp.alpha.g.Monitor().Status().State; st == monitor.Crowd {
		t.Errorf("the gateway is still in a crowd")
	}
	w2, s2 := site()
	if w, s := w2-w1, s2-s1; w+s < 1<<20 {
		t.Errorf("after the helper was released the site sent the page %d bytes from its webseed and %d from its seeder; "+
			"want the rest of the page from them", w, s)
	} else {
		t.Logf("after the helper was released the site sent the page %d bytes from its webseed and %d from its seeder", w, s)
	}
}

// TestHelpersStayForLoadingPages: after the crowd, a helper that pages still load from is not released until
// they are done (their engines stop asking for webseeds), so that they do not go back to the site's link for
// the rest; then it is.
//
// Its premise, the page still loading 2 s after the crowd, is a race on a loaded machine: the page also loads
// from the site's own link, and when the helper is slow to become ready the page may be done first (it was,
// once, in CI). A run where the premise did not hold proves nothing either way; it is run once more.
func TestHelpersStayForLoadingPages(t *testing.T) {
	for attempt := 1; !helpersStayForLoadingPage(t); attempt++ {
		if attempt == 2 {
			t.Fatal("twice the page was complete within 2 s of the crowd's end: this test needs a slower helper")
		}
		t.Log("the page was complete within 2 s of the crowd's end; once more")
	}
}

// helpersStayForLoadingPage runs TestHelpersStayForLoadingPages once; false when the page was complete too
// soon to tell.
func helpersStayForLoadingPage(t *testing.T) bool {
	// beta's link is slow enough that the page is still loading from it once the crowd is over.
	slow, err := uplink.New(384 << 10)
	if err != nil {
		t.Fatal(err)
	}
	lp := crowdAfterPageLoads(t, slow, time.Second, 0)
	helper := func() string {
		hs, _ := lp.alpha.g.Helpers()
		if len(hs) == 0 {
			return ""
		}
		return hs[0].State
	}
	testutil.Eventually(t, 60*time.Second, "the helper ready", func() bool { return helper() == "ready" })
	testutil.Eventually(t, 60*time.Second, "the page loading from the helper", func() bool { return slow.Sent() >= 512<<10 })
	lp.stopLoad()
	testutil.Eventually(t, 30*time.Second, "the crowd over", func() bool {
		return lp.alpha.g.Monitor().Status().State == monitor.Normal
	})
	over := time.Now()
	before := lp.alpha.g.Bytes()[gateway.SourceGatewayHTTP]
	// Two health-check rounds (300 ms each) and more: a release would have happened by now.
	time.Sleep(2 * time.Second)
	select {
	case l := <-lp.loaded:
		t.Logf("the page was complete within 2 s of the crowd's end (%v, %v)", l.res.Stats, l.err)
		return false
	default:
	}
	if st := helper(); st != "ready" {
		t.Fatalf("helper %s 2 s after the crowd, while a page still loads from it; want it kept", st)
	}
	lp.result(t)
	done := time.Now()
	if n := lp.alpha.g.Bytes()[gateway.SourceGatewayHTTP] - before; n > 256<<10 {
		t.Errorf("after the crowd the site's own webseed sent the loading page %d bytes; want the rest from the helper", n)
	}
	testutil.Eventually(t, 30*time.Second, "the helper released once the page is done", func() bool { return helper() == "released" })
	t.Logf("page done %v after the crowd; helper released %v after that", done.Sub(over).Round(time.Millisecond),
		time.Since(done).Round(time.Millisecond))
	return true
}

// TestSilentMemberDoesNotHoldBackRecruiting: members are asked one after another, but one that accepts the
// connection and never answers holds the next back for a moment only.
func TestSilentMemberDoesNotHoldBackRecruiting(t *testing.T) {
	port := samePort(t, "127.0.0.1", "127.0.0.2", "127.0.0.3")
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	keys, fed := newFederation(t, port, "alpha", "beta", "gamma")
	// beta's address takes connections and never answers.
	silent, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var held sync.WaitGroup
	defer held.Wait()
	held.Go(func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	})
	dnsSrv, err := steer.NewServer(steer.ServerConfig{Zone: "example.test", Addr: "127.0.0.1:0", TTL: time.Second,
		NameServers: []steer.NameServer{{Name: "ns1.example.test", Addrs: addrs("127.0.0.1")}}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	fedCfg := func(n string) *gateway.FederationConfig {
		return &gateway.FederationConfig{Key: keys[n], Members: fed, HealthInterval: 300 * time.Millisecond}
	}
	runMember(t, gateway.Config{
		Net:        gateway.NetConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port), PeerListen: "127.0.0.1:0"},
		Site:       gateway.SiteConfig{Origin: origin, Root: dir, Name: siteName},
		Federation: fedCfg("alpha"), DNS: dnsSrv,
		Monitor: monitor.Config{Window: time.Second, Threshold: 10, ClientRate: -1, EnterAfter: 300 * time.Millisecond, ExitAfter: 3 * time.Second}})
	runMember(t, gateway.Config{
		Net:        gateway.NetConfig{Listen: fmt.Sprintf("127.0.0.3:%d", port), PeerListen: "127.0.0.3:0"},
		Federation: fedCfg("gamma")})

	stopLoad := startLoad(t, fmt.Sprintf("http://127.0.0.1:%d/style.css", port))
	defer stopLoad()
	start := time.Now()
	testutil.Eventually(t, 20*time.Second, "gamma in DNS while beta says nothing", func() bool {
		return slices.Contains(resolve(t, dnsSrv.Addr()), netip.MustParseAddr("127.0.0.3"))
	})
	t.Logf("gamma in DNS %v after the load began", time.Since(start).Round(time.Millisecond))
	silent.Close() // ends beta's hanging request, and the accept loop
}
