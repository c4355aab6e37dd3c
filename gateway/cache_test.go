package gateway

import (
	"bytes"

	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testutil"
)

// The tests of the shared-store boundary (docs/security.md): what a response stored from one client carries
// to the next, and which requests and responses never enter the store. Each drives a real origin through a
// real gateway as a browser would.

// fetch sends a request to the gateway with the Host field host ("" for the gateway's address) and the
// given header fields (every value of each is sent), and reads the whole body.
func fetch(t *testing.T, method, url, host string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, vs := range hdr {
		req.Header[k] = vs
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

// learningStarted reports whether the gateway began storing the response for key. It decides before the
// response is sent, so it is settled once the client has the response.
func learningStarted(g *Server, key string) bool {
	g.learnMu.Lock()
	defer g.learnMu.Unlock()
	_, ok := g.learning[key]
	return ok
}

func stored(g *Server, key string) func() bool {
	return func() bool { _, ok := g.Catalog().Lookup(key); return ok }
}

// Item 5: a copy served from the store carries the origin's end-to-end fields, not only its type.
func TestStoredCopyKeepsTheOriginsHeaders(t *testing.T) {
	o := newOrigin(t)
	svg := append([]byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script>`), testBytes(80_000, 1)...)
	o.asset("/uploads/a.svg", "image/svg+xml", svg, "Cache-Control", "public, max-age=600",
		"Content-Disposition", `attachment; filename="a.svg"`, "Content-Security-Policy", "sandbox",
		"X-Content-Type-Options", "nosniff", "Access-Control-Allow-Origin", "*")
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL)}})
	first, _ := get(t, g.url("/uploads/a.svg"))
	testutil.Eventually(t, 10*time.Second, "the upload stored", stored(g, "/uploads/a.svg"))
	resp, b := get(t, g.url("/uploads/a.svg"))
	if resp.Header.Get("X-Swarmgate") != "store" || !bytes.Equal(b, svg) {
		t.Fatalf("second response not the stored copy: %v", resp.Header)
	}
	for _, k := range []string{"Content-Type", "Content-Disposition", "Content-Security-Policy", "X-Content-Type-Options",
		"Access-Control-Allow-Origin", "Last-Modified", "Cache-Control"} {
		if got, want := resp.Header.Get(k), first.Header.Get(k); got != want || want == "" {
			t.Errorf("%s: stored copy has %q, the origin sent %q", k, got, want)
		}
	}
	if resp.Header.Get("Age") == "" {
		t.Error("a stored copy must say its Age (RFC 9111 §5.1)")
	}
}

// Item 5 and the revalidation sibling: a 304 to the gateway's own revalidation updates the stored header
// (RFC 9111 §4.3.4), and the client, which asked unconditionally, gets a 200 with the whole stored header.
func TestRevalidationUpdatesTheStoredHeader(t *testing.T) {
	o := newOrigin(t)
	font := testBytes(90_000, 2)
	var full, notModified atomic.Int32
	o.mux.HandleFunc("/font.woff2", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			notModified.Add(1)
			h.Set("Cache-Control", "public, max-age=600")
			h.Set("Access-Control-Allow-Origin", "https://app.example")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		full.Add(1)
		h.Set("Content-Type", "font/woff2")
		h.Set("Cache-Control", "no-cache")
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Timing-Allow-Origin", "*")
		w.Write(font)
	})
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL)}})
	get(t, g.url("/font.woff2"))
	testutil.Eventually(t, 10*time.Second, "the font stored", stored(g, "/font.woff2"))
	resp, b := get(t, g.url("/font.woff2")) // stale (no-cache): revalidated
	if resp.StatusCode != 200 || !bytes.Equal(b, font) || notModified.Load() != 1 {
		t.Fatalf("revalidated response: %d, %d bytes, %d revalidations", resp.StatusCode, len(b), notModified.Load())
	}
	for k, want := range map[string]string{"Content-Type": "font/woff2", "Access-Control-Allow-Origin": "https://app.example",
		"Timing-Allow-Origin": "*", "Cache-Control": "public, max-age=600", "Etag": `"v1"`, "X-Swarmgate": "store"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	// The 304 made the copy fresh for 600 s: the next request stays at the gateway, with the same header.
	resp, _ = get(t, g.url("/font.woff2"))
	if full.Load() != 1 || notModified.Load() != 1 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("origin asked %d+%d times; ACAO %q", full.Load(), notModified.Load(), resp.Header.Get("Access-Control-Allow-Origin"))
	}
}

// Item 6: a response that varies on anything but Accept-Encoding is neither stored nor shared.
func TestVaryingResponsesAreNotShared(t *testing.T) {
	o := newOrigin(t)
	o.mux.HandleFunc("/hello.bin", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Accept-Language")
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Write(bytes.Repeat([]byte(r.Header.Get("Accept-Language")+";"), 30_000))
	})
	o.asset("/gz.bin", "application/octet-stream", testBytes(80_000, 3), "Cache-Control", "max-age=600", "Vary", "Accept-Encoding")
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL)}})
	get(t, g.url("/hello.bin"), "Accept-Language", "fr")
	if learningStarted(g, "/hello.bin") {
		t.Error("a response with Vary: Accept-Language is being stored")
	}
	if _, b := get(t, g.url("/hello.bin"), "Accept-Language", "en"); !bytes.HasPrefix(b, []byte("en;")) {
		t.Errorf("an English reader got %.10q", b)
	}
	get(t, g.url("/gz.bin"))
	testutil.Eventually(t, 10*time.Second, "Vary: Accept-Encoding stored (the gateway asks for identity)", stored(g, "/gz.bin"))
}

// Item 7: a request for another host neither reads nor teaches the store; the site's names do.
func TestOnlyTheSitesHostUsesTheStore(t *testing.T) {
	o := newOrigin(t)
	good, evil := testBytes(80_000, 4), testBytes(80_000, 5)
	o.mux.HandleFunc("/app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("Content-Type", "text/javascript")
		if strings.HasPrefix(r.Host, "attacker.example") {
			w.Write(evil)
			return
		}
		w.Write(good)
	})
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL)}})
	fetch(t, "GET", g.url("/app.js"), "attacker.example", nil)
	if learningStarted(g, "/app.js") {
		t.Fatal("a response for attacker.example is being stored as the site's")
	}
	get(t, g.url("/app.js"))
	testutil.Eventually(t, 10*time.Second, "the site's script stored", stored(g, "/app.js"))
	if resp, b := fetch(t, "GET", g.url("/app.js"), "", nil); !bytes.Equal(b, good) || resp.Header.Get("X-Swarmgate") != "store" {
		t.Fatalf("the site's script: from the store %q, same bytes %v", resp.Header.Get("X-Swarmgate"), bytes.Equal(b, good))
	}
	if resp, b := fetch(t, "GET", g.url("/app.js"), "attacker.example", nil); !bytes.Equal(b, evil) || resp.Header.Get("X-Swarmgate") != "" {
		t.Error("a request for another host was answered from the site's store")
	}

	// The origin sees the Host a request came with, and the store keys by path alone: a Host naming another
	// address or port than the one the request reached (whose links an origin would build from it) neither
	// reads nor teaches the store.
	o.mux.HandleFunc("/links.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Write(append([]byte("load('//"+r.Host+"/more.js');"), good...))
	})
	for _, host := range []string{"6.6.6.6", "127.0.0.1:1337", "localhost:1337"} {
		fetch(t, "GET", g.url("/links.js"), host, nil)
		if learningStarted(g, "/links.js") {
			t.Fatalf("a response for Host %s is being stored", host)
		}
	}
	get(t, g.url("/links.js"))
	testutil.Eventually(t, 10*time.Second, "the script stored for the Host it was reached by", stored(g, "/links.js"))

	// With a site name, that name (any case; no port, a standard one or the gateway's) is the site; its
	// address is not.
	named := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL), Name: "site.example"}})
	fetch(t, "GET", named.url("/app.js"), "127.0.0.1", nil)
	fetch(t, "GET", named.url("/app.js"), "site.example:1337", nil)
	if learningStarted(named, "/app.js") {
		t.Fatal("a gateway with a site name stores a response for its address, or for another port")
	}
	_, port, err := net.SplitHostPort(named.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fetch(t, "GET", named.url("/app.js"), "Site.Example:"+port, nil)
	testutil.Eventually(t, 10*time.Second, "the named site's script stored", stored(named, "/app.js"))
}

// Item 8 and its siblings: a request with credentials in any field, or a body, or no-store, teaches the
// store nothing; Authorization is a credential on --public paths too.
func TestCredentialedRequestsAreNotStored(t *testing.T) {
	o := newOrigin(t)
	o.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		user := "anonymous"
		if c, err := r.Cookie("session"); err == nil {
			user = c.Value
		}
		w.Write(bytes.Repeat([]byte(user+";"), 20_000))
	})
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL), PublicPaths: []string{"/pub/"}}})
	for _, c := range []struct {
		path string
		hdr  http.Header
	}{
		{"/me.bin", http.Header{"Cookie": {"", "session=alice"}}},
		{"/token.bin", http.Header{"Authorization": {"", "Bearer x"}}},
		{"/proxyauth.bin", http.Header{"Proxy-Authorization": {"Basic eDp5"}}},
		{"/pub/api.bin", http.Header{"Authorization": {"Bearer x"}}},
		{"/nostore.bin", http.Header{"Cache-Control": {"no-store"}}},
	} {
		fetch(t, "GET", g.url(c.path), "", c.hdr)
		if learningStarted(g, c.path) {
			t.Errorf("%s with %v is being stored", c.path, c.hdr)
		}
	}
	req, _ := http.NewRequest("GET", g.url("/body.bin"), strings.NewReader("query"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if learningStarted(g, "/body.bin") {
		t.Error("the response to a GET with a body is being stored")
	}
	// Cookies on a --public path are the operator's to waive.
	fetch(t, "GET", g.url("/pub/logo.bin"), "", http.Header{"Cookie": {"session=alice"}})
	if !learningStarted(g, "/pub/logo.bin") {
		t.Error("a --public path with a cookie is not stored")
	}
}

// Item 9: a query too long to be a file name is not stored, and versions keep being built.
func TestLongQueriesDoNotStopVersions(t *testing.T) {
	o := newOrigin(t)
	o.asset("/big.bin", "application/octet-stream", testBytes(80_000, 6), "Cache-Control", "max-age=600")
	o.asset("/next.bin", "application/octet-stream", testBytes(80_000, 7), "Cache-Control", "max-age=600")
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL)}})
	get(t, g.url("/big.bin?"+strings.Repeat("q", 300)))
	get(t, g.url("/next.bin"))
	testutil.Eventually(t, 10*time.Second, "a version with /next.bin", func() bool {
		v := g.Catalog().Current()
		if v == nil {
			return false
		}
		_, ok := v.File("/next.bin")
		return ok
	})
}

// Item 10: chunked HTML larger than the gateway rewrites passes through whole.
func TestLargeChunkedPagePassesThroughWhole(t *testing.T) {
	o := newOrigin(t)
	page := append([]byte("<!doctype html><title>long</title><p>"), bytes.Repeat([]byte("0123456789abcdef"), (maxRewriteHTML+100_000)/16)...)
	o.mux.HandleFunc("/long.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		for p := page; len(p) > 0; p = p[min(len(p), 64<<10):] {
			w.Write(p[:min(len(p), 64<<10)])
			w.(http.Flusher).Flush() // chunked: no Content-Length
		}
	})
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL), Inject: true}})
	resp, b := get(t, g.url("/long.html"))
	if !bytes.Equal(b, page) {
		t.Fatalf("got %d bytes (Content-Length %d), the origin sent %d", len(b), resp.ContentLength, len(page))
	}
}

// Sibling: net/http must not sniff a type for an untyped response (an upload would become text/html), from
// the origin or from the store.
func TestUntypedResponsesStayUntyped(t *testing.T) {
	o := newOrigin(t)
	body := append([]byte("<html><script>alert(document.cookie)</script>"), testBytes(80_000, 8)...)
	o.mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write(body)
	})
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL)}})
	resp, _ := get(t, g.url("/upload"))
	if ct := resp.Header.Values("Content-Type"); len(ct) > 0 {
		t.Errorf("proxied: Content-Type %q added", ct)
	}
	testutil.Eventually(t, 10*time.Second, "the upload stored", stored(g, "/upload"))
	resp, _ = get(t, g.url("/upload"))
	if ct := resp.Header.Values("Content-Type"); len(ct) > 0 || resp.Header.Get("X-Swarmgate") != "store" {
		t.Errorf("stored: Content-Type %q added (%q)", ct, resp.Header.Get("X-Swarmgate"))
	}
}

// Sibling: Cache-Control no-cache outweighs s-maxage: the copy is revalidated every time.
func TestNoCacheIsRevalidatedDespiteSMaxAge(t *testing.T) {
	o := newOrigin(t)
	o.asset("/a.bin", "application/octet-stream", testBytes(80_000, 9), "Cache-Control", "no-cache, s-maxage=600", "ETag", `"a"`)
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL)}})
	var asked atomic.Int32
	o.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { asked.Add(1); o.mux.ServeHTTP(w, r) })
	get(t, g.url("/a.bin"))
	testutil.Eventually(t, 10*time.Second, "stored", stored(g, "/a.bin"))
	get(t, g.url("/a.bin"))
	if asked.Load() != 2 {
		t.Errorf("origin asked %d times for two requests of a no-cache asset", asked.Load())
	}
}

// Sibling: a stale copy whose body is gone is not revalidated, so that an unconditional request never gets a
// 304; and one the origin now answers 404 for is forgotten.
func TestRevalidationNeverAnswersAnUnconditionalRequestWith304(t *testing.T) {
	o := newOrigin(t)
	body := testBytes(80_000, 10)
	var gone atomic.Bool
	o.mux.HandleFunc("/x.bin", func(w http.ResponseWriter, r *http.Request) {
		if gone.Load() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", `"x"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL)}})
	get(t, g.url("/x.bin"))
	testutil.Eventually(t, 10*time.Second, "stored", stored(g, "/x.bin"))
	res, _ := g.Catalog().Lookup("/x.bin")
	f, err := g.Catalog().OpenResource(res)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Remove(f.Name()); err != nil {
		t.Fatal(err)
	}
	if resp, b := get(t, g.url("/x.bin")); resp.StatusCode != 200 || !bytes.Equal(b, body) {
		t.Fatalf("with the stored body gone: %d, %d bytes", resp.StatusCode, len(b))
	}
	gone.Store(true)
	if resp, _ := get(t, g.url("/x.bin")); resp.StatusCode != 404 {
		t.Fatalf("the origin's 404: %d", resp.StatusCode)
	}
	if _, ok := g.Catalog().Lookup("/x.bin"); ok {
		t.Error("a resource the origin no longer has is still stored")
	}
}

// Sibling: with an origin URL that has a path, the store's key is the client's path, so that the store
// answers it and versions name the site's URLs.
func TestStoreKeyIsTheClientsPath(t *testing.T) {
	o := newOrigin(t)
	o.asset("/base/pic.jpg", "image/jpeg", testBytes(80_000, 11), "Cache-Control", "max-age=600")
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL + "/base")}})
	get(t, g.url("/pic.jpg"))
	testutil.Eventually(t, 10*time.Second, "stored as /pic.jpg", stored(g, "/pic.jpg"))
	if resp, _ := get(t, g.url("/pic.jpg")); resp.Header.Get("X-Swarmgate") != "store" {
		t.Error("not answered from the store")
	}
}
