package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/internal/testlog"
	"github.com/swarmgate/swarmgate/internal/testutil"
	"github.com/swarmgate/swarmgate/swarmapi"
)

func testBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// origin is a test site whose handlers count the bytes of each path they send.
type origin struct {
	*httptest.Server
	mux  *http.ServeMux
	sent map[string]*atomic.Int64
}

func newOrigin(t *testing.T) *origin {
	o := &origin{mux: http.NewServeMux(), sent: map[string]*atomic.Int64{}}
	o.Server = httptest.NewServer(o.mux)
	t.Cleanup(o.Close)
	return o
}

// asset serves body at path with the given headers, counting what it sends.
func (o *origin) asset(path, ctype string, body []byte, hdr ...string) {
	n := &atomic.Int64{}
	o.sent[path] = n
	o.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Add(hdr[i], hdr[i+1])
		}
		http.ServeContent(countingResponseWriter{w, n}, r, "", time.Unix(1700000000, 0), bytes.NewReader(body))
	})
}

func startGateway(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Net.Listen == "" {
		cfg.Net.Listen = "127.0.0.1:0"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = testlog.New(t, slog.LevelDebug)
	}
	if cfg.Visitors.P2P == "" {
		cfg.Visitors.P2P = P2PAlways // the tests of P2P run in any state; p2p_test.go tests the default
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway run: %v", err)
		}
	})
	return s
}

func (s *Server) url(path string) string { return "http://" + s.Addr().String() + path }

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestProxyPreservesStatusHeadersRangeAndStreaming(t *testing.T) {
	o := newOrigin(t)
	body := testBytes(100_000, 1)
	o.asset("/file.bin", "application/octet-stream", body, "X-Custom", "yes")
	o.mux.HandleFunc("/teapot", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Tea", "earl grey")
		w.WriteHeader(http.StatusTeapot)
		fmt.Fprint(w, "short and stout")
	})
	flushed := make(chan struct{})
	o.mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "first;")
		w.(http.Flusher).Flush()
		<-flushed
		fmt.Fprint(w, "second")
	})
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL)}})

	resp, b := get(t, g.url("/teapot"))
	if resp.StatusCode != http.StatusTeapot || resp.Header.Get("X-Tea") != "earl grey" || string(b) != "short and stout" {
		t.Fatalf("teapot: %d %v %q", resp.StatusCode, resp.Header, b)
	}
	resp, b = get(t, g.url("/file.bin"), "Range", "bytes=1000-1999")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, body[1000:2000]) || resp.Header.Get("X-Custom") != "yes" {
		t.Fatalf("range: %d %d bytes", resp.StatusCode, len(b))
	}

	// Streaming: the first part arrives before the origin writes the second.
	resp2, err := http.Get(g.url("/stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	first := make([]byte, len("first;"))
	if _, err := io.ReadFull(resp2.Body, first); err != nil || string(first) != "first;" {
		t.Fatalf("stream: %q %v", first, err)
	}
	close(flushed)
	rest, _ := io.ReadAll(resp2.Body)
	if string(rest) != "second" {
		t.Fatalf("stream rest %q", rest)
	}
}

func manifestOf(t *testing.T, g *Server) *swarmapi.Manifest {
	t.Helper()
	resp, b := get(t, g.url(swarmapi.PathManifest))
	if resp.StatusCode != 200 {
		return nil
	}
	var m swarmapi.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

func TestOnlyPublicCacheableContentEntersTheSwarm(t *testing.T) {
	o := newOrigin(t)
	big := func(seed uint64) []byte { return testBytes(80_000, seed) }
	o.asset("/public.jpg", "image/jpeg", big(1), "Cache-Control", "public, max-age=60")
	o.asset("/private.jpg", "image/jpeg", big(2), "Cache-Control", "private, max-age=60")
	o.asset("/nostore.bin", "application/octet-stream", big(3), "Cache-Control", "no-store")
	o.asset("/setcookie.bin", "application/octet-stream", big(4), "Set-Cookie", "session=abc")
	o.asset("/varycookie.bin", "application/octet-stream", big(5), "Vary", "Accept, Cookie")
	o.asset("/account.bin", "application/octet-stream", big(6)) // fetched with a cookie below
	o.asset("/api/me", "application/json", big(7))              // fetched with Authorization below
	o.asset("/declared/logo.png", "image/png", big(8))          // the operator declared it public
	o.asset("/small.css", "text/css", []byte("body{}"))
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL), PublicPaths: []string{"/declared/"}}})

	for _, p := range []string{"/public.jpg", "/private.jpg", "/nostore.bin", "/setcookie.bin", "/varycookie.bin", "/small.css"} {
		get(t, g.url(p))
	}
	get(t, g.url("/account.bin"), "Cookie", "session=abc")
	get(t, g.url("/api/me"), "Authorization", "Bearer x")
	get(t, g.url("/declared/logo.png"), "Cookie", "session=abc")

	testutil.Eventually(t, 10*time.Second, "a version with the public assets", func() bool {
		m := manifestOf(t, g)
		return m != nil && len(m.Files) == 2
	})
	m := manifestOf(t, g)
	for _, p := range []string{"/public.jpg", "/declared/logo.png"} {
		if _, ok := m.Files[p]; !ok {
			t.Errorf("%s missing from the manifest", p)
		}
	}
	// Nothing private is in the torrent either, nor served by the webseed.
	for _, secret := range []string{"private", "nostore", "setcookie", "varycookie", "account", "api"} {
		if bytes.Contains(m.Torrent, []byte(secret)) {
			t.Errorf("%s reached the torrent", secret)
		}
		if resp, _ := get(t, g.url(swarmapi.PathSeed+m.Version+"/"+secret+".bin")); resp.StatusCode != 404 {
			t.Errorf("webseed serves %s", secret)
		}
	}
	for _, v := range g.Catalog().Versions() {
		for _, f := range v.Files {
			if f.Path != "/public.jpg" && f.Path != "/declared/logo.png" {
				t.Errorf("version %s holds %s", v.Name, f.Path)
			}
		}
	}
}

func TestWebseedServesRangesOfVersionFiles(t *testing.T) {
	o := newOrigin(t)
	body := testBytes(150_000, 3)
	o.asset("/v.mp4", "video/mp4", body, "Cache-Control", "max-age=60")
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL)}})
	get(t, g.url("/v.mp4"))
	testutil.Eventually(t, 10*time.Second, "a version", func() bool { return g.Catalog().Current() != nil })
	m := manifestOf(t, g)
	if m.Tracker != "ws://"+g.Addr().String()+swarmapi.PathAnnounce || m.Webseeds[0] != g.url(swarmapi.PathSeed) {
		t.Fatalf("manifest URLs: %s %v", m.Tracker, m.Webseeds)
	}
	resp, b := get(t, m.Webseeds[0]+m.Version+"/v.mp4", "Range", "bytes=100-199")
	if resp.StatusCode != 206 || !bytes.Equal(b, body[100:200]) {
		t.Fatalf("webseed range: %d", resp.StatusCode)
	}
	if g.Bytes()[SourceGatewayHTTP] < 100 {
		t.Fatalf("webseed bytes not counted: %v", g.Bytes())
	}
}

func TestStoredAssetsLeaveTheOriginOnce(t *testing.T) {
	o := newOrigin(t)
	body := testBytes(200_000, 4)
	o.asset("/fresh.jpg", "image/jpeg", body, "Cache-Control", "public, max-age=600")
	o.asset("/stale.jpg", "image/jpeg", body[:150_000], "Cache-Control", "no-cache", "ETag", `"v1"`)
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL)}})
	for _, p := range []string{"/fresh.jpg", "/stale.jpg"} {
		_, b := get(t, g.url(p))
		testutil.Eventually(t, 10*time.Second, p+" stored", func() bool { _, ok := g.Catalog().Lookup(p); return ok })
		for range 3 {
			resp, b2 := get(t, g.url(p))
			if !bytes.Equal(b, b2) || resp.Header.Get("X-Swarmgate") != "store" {
				t.Fatalf("%s: second response differs or not from the store (%v)", p, resp.Header)
			}
		}
		if sent := o.sent[p].Load(); sent != int64(len(b)) {
			t.Fatalf("%s: origin sent %d bytes for a %d byte asset fetched 4 times", p, sent, len(b))
		}
	}
}

func TestOwnSTUNServerIsTheDefaultICEServer(t *testing.T) {
	o := newOrigin(t)
	o.asset("/a.bin", "application/octet-stream", testBytes(70_000, 1), "Cache-Control", "max-age=60")
	g := startGateway(t, Config{Net: NetConfig{STUNListen: "127.0.0.1:0"}, Site: SiteConfig{Origin: mustURL(o.URL)}})
	get(t, g.url("/a.bin"))
	testutil.Eventually(t, 10*time.Second, "a version", func() bool { return g.Catalog().Current() != nil })
	m := manifestOf(t, g)
	want := fmt.Sprintf("stun:127.0.0.1:%d", g.STUNPort())
	if len(m.ICEServers) != 1 || m.ICEServers[0].URLs[0] != want {
		t.Fatalf("ICE servers %+v, want %s", m.ICEServers, want)
	}
	// It answers a real STUN binding request with the client's address.
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", g.STUNPort()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := stun.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mapped stun.XORMappedAddress
	var cbErr error
	if err := c.Do(stun.MustBuild(stun.TransactionID, stun.BindingRequest), func(ev stun.Event) {
		if ev.Error != nil {
			cbErr = ev.Error
			return
		}
		cbErr = mapped.GetFrom(ev.Message)
	}); err != nil || cbErr != nil {
		t.Fatal(err, cbErr)
	}
	if mapped.String() != conn.LocalAddr().String() {
		t.Fatalf("STUN says %s, we are %s", mapped, conn.LocalAddr())
	}
	// Operator-configured servers replace it.
	g2 := startGateway(t, Config{
		Net:      NetConfig{STUNListen: "127.0.0.1:0"},
		Site:     SiteConfig{Origin: mustURL(o.URL)},
		Visitors: VisitorConfig{ICEServers: []swarmapi.ICEServer{{URLs: []string{"turn:turn.site.test:3478"}, Username: "u", Credential: "c"}}},
	})
	get(t, g2.url("/a.bin"))
	testutil.Eventually(t, 10*time.Second, "a version", func() bool { return g2.Catalog().Current() != nil })
	if m := manifestOf(t, g2); m.ICEServers[0].URLs[0] != "turn:turn.site.test:3478" {
		t.Fatalf("configured ICE servers ignored: %+v", m.ICEServers)
	}
}

func TestServesHTTPSWithSecureSocketURLs(t *testing.T) {
	cert, pool := selfSigned(t)
	o := newOrigin(t)
	o.asset("/a.bin", "application/octet-stream", testBytes(70_000, 1), "Cache-Control", "max-age=60")
	g := startGateway(t, Config{Net: NetConfig{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}, Site: SiteConfig{Origin: mustURL(o.URL)}})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := "https://" + g.Addr().String()
	resp, err := client.Get(base + "/a.bin")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	testutil.Eventually(t, 10*time.Second, "a version", func() bool { return g.Catalog().Current() != nil })
	resp, err = client.Get(base + swarmapi.PathManifest)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m swarmapi.Manifest
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.Tracker != "wss://"+g.Addr().String()+swarmapi.PathAnnounce || m.Webseeds[0] != base+swarmapi.PathSeed {
		t.Fatalf("over HTTPS the manifest must name secure URLs: %s %v", m.Tracker, m.Webseeds)
	}
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "swarmgate test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestLoadDrivesTheCrowdState(t *testing.T) {
	o := newOrigin(t)
	o.asset("/p.html", "text/html", []byte("<p>hi</p>"))
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL)}, Monitor: monitor.Config{
		Window: time.Second, Threshold: 50, EnterAfter: 300 * time.Millisecond, ClientRate: -1, // one client stands for a crowd
		ExitAfter: 300 * time.Millisecond, EndingHold: 300 * time.Millisecond}})
	// A bounded load: at most 2000 requests or 10 s, stopping as soon as the crowd is declared.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 2000 && time.Now().Before(deadline) && g.Monitor().Status().State != monitor.Crowd; i++ {
		get(t, g.url("/p.html"))
		time.Sleep(2 * time.Millisecond)
	}
	if st := g.Monitor().Status(); st.State != monitor.Crowd {
		t.Fatalf("no crowd under load: %+v", st)
	}
	if m := manifestOf(t, g); m != nil && m.Mode != "crowd" {
		t.Fatalf("manifest mode %q", m.Mode)
	}
	testutil.Eventually(t, 10*time.Second, "the crowd to end", func() bool { return g.Monitor().Status().State == monitor.Normal })
	resp, b := get(t, g.url(swarmapi.PathMetrics))
	if resp.StatusCode != 200 || !strings.Contains(string(b), `swarmgate_crowd_transitions_total{from="crowd",to="ending"} 1`) ||
		!strings.Contains(string(b), `swarmgate_crowd_state{state="normal"} 1`) {
		t.Fatalf("metrics:\n%s", b)
	}
}

// TestBundlesAreGzippedToBrowsersThatAcceptIt: the engine, the biggest thing the gateway itself sends to
// every P2P visitor, goes gzipped when the browser accepts it, and decompresses to the very bundle; clients
// that do not accept gzip, or ask for a range, get it as it is.
func TestBundlesAreGzippedToBrowsersThatAcceptIt(t *testing.T) {
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(newOrigin(t).URL)}})
	engine := swarmapi.Prefix + g.assets.Engine
	tr := &http.Transport{DisableCompression: true} // see the encoding as sent
	defer tr.CloseIdleConnections()
	fetch := func(accept, rng string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, g.url(engine), nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	_, plain := fetch("", "")
	resp, gz := fetch("gzip, deflate, br", "")
	if resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("engine to a gzip browser: Content-Encoding %q, Vary %q", resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, plain) {
		t.Fatalf("gzipped engine decompresses to %d bytes (%v), want the %d-byte bundle", len(unzipped), err, len(plain))
	}
	if len(gz)*2 > len(plain) {
		t.Errorf("gzipped engine is %d bytes of %d", len(gz), len(plain))
	}
	t.Logf("engine: %d bytes, %d gzipped", len(plain), len(gz))
	for _, c := range []struct{ accept, rng string }{{"gzip;q=0", ""}, {"br", ""}, {"gzip", "bytes=0-99"}} {
		resp, b := fetch(c.accept, c.rng)
		if resp.Header.Get("Content-Encoding") != "" || !bytes.HasPrefix(plain, b) || len(b) == 0 {
			t.Errorf("Accept-Encoding %q, Range %q: Content-Encoding %q, %d bytes", c.accept, c.rng, resp.Header.Get("Content-Encoding"), len(b))
		}
	}
}
