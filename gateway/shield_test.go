package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/internal/nginxtest"
	"github.com/swarmgate/swarmgate/internal/testutil"
)

// shieldSite is the example site on a real nginx, with two per-user answers: /account greets the cookie's
// user, /login sets a cookie.
func shieldSite(t *testing.T) (*nginxtest.Nginx, map[string][]byte) {
	files := map[string][]byte{
		"/index.html": []byte(`<!doctype html><html><head><title>A flash crowd</title><link rel="stylesheet" href="/style.css">` +
			`<script src="/app.js" defer></script></head><body><h1>Everyone is here</h1>` +
			strings.Repeat("<p>The page everyone wants to read right now.</p>\n", 20) + `</body></html>`),
		"/style.css": []byte(strings.Repeat("body { font-family: sans-serif; margin: 0 auto; max-width: 40em; }\n", 10)),
		"/app.js":    []byte(`document.querySelector("h1").textContent += "!";`),
	}
	return nginxtest.Start(t, nginxtest.Options{Files: files, Locations: `
        location = /account { default_type text/html; return 200 "<p>hello $cookie_user</p>"; }
        location = /login { default_type text/html; add_header Set-Cookie "user=bob; Path=/"; return 200 "<p>welcome</p>"; }
`}), files
}

// crowdGateway starts a gateway in front of origin whose crowd is declared by one client's load, and stays
// declared for the test.
func crowdGateway(t *testing.T, origin string) *Server {
	return startGateway(t, Config{Site: SiteConfig{Origin: mustURL(origin)}, Monitor: monitor.Config{
		Window: time.Second, Threshold: 30, EnterAfter: 300 * time.Millisecond, ClientRate: -1, // one client stands for a crowd
		ExitAfter: time.Hour}})
}

// declareCrowd loads the gateway with page views (at most 2000, or 10 s) until it declares a crowd.
func declareCrowd(t *testing.T, g *Server, c *http.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 2000 && time.Now().Before(deadline) && g.Monitor().Status().State != monitor.Crowd; i++ {
		if resp, err := c.Get(g.url("/")); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := g.Monitor().Status(); st.State != monitor.Crowd {
		t.Fatalf("no crowd declared: %+v", st)
	}
}

// TestShieldHoldsTheOriginInACrowd: during a declared crowd, 150 page requests a second for 25 s through the
// gateway reach a real nginx at most 2% of the time (micro-caching, collapsing, stale-while-revalidate),
// and every client gets the page.
func TestShieldHoldsTheOriginInACrowd(t *testing.T) {
	ngx, files := shieldSite(t)
	g := crowdGateway(t, ngx.URL)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	declareCrowd(t, g, c)

	const rate, seconds = 150, 25
	before := len(ngx.Settled(t))
	var ok, bad atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32) // at most 32 requests in flight: a bounded load
	tick := time.NewTicker(time.Second / rate)
	start := time.Now()
	for range rate * seconds {
		<-tick.C
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			resp, err := c.Get(g.url("/"))
			if err != nil {
				bad.Add(1)
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !strings.Contains(string(b), string(files["/index.html"][:64])) {
				bad.Add(1)
				return
			}
			ok.Add(1)
		})
	}
	tick.Stop()
	wg.Wait()
	elapsed := time.Since(start)
	reqs := ngx.Settled(t)[before:]
	pages := 0
	for _, r := range reqs {
		if r.URI == "/" {
			pages++
		}
	}
	t.Logf("%d page requests in %v (%d answered, %d failed); nginx logged %d of them (%.2f%%), state %v",
		rate*seconds, elapsed.Round(time.Millisecond), ok.Load(), bad.Load(), pages, 100*float64(pages)/(rate*seconds),
		g.Monitor().Status().State)
	if bad.Load() > 0 {
		t.Errorf("%d page requests failed", bad.Load())
	}
	if pages*50 > rate*seconds {
		t.Errorf("nginx saw %d of %d page requests, more than 2%%", pages, rate*seconds)
	}
}

// TestShieldNeverSharesALoggedInAnswer: in a crowd, concurrent requests with a cookie each reach the origin
// and get their own answer, anonymous ones never get a logged-in answer, and a response that sets a cookie
// is never reused.
func TestShieldNeverSharesALoggedInAnswer(t *testing.T) {
	ngx, _ := shieldSite(t)
	g := crowdGateway(t, ngx.URL)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	declareCrowd(t, g, c)

	const rounds, each = 20, 3
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	fail := func(f string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(f, args...))
		mu.Unlock()
	}
	ask := func(path, cookie, want string) {
		req, _ := http.NewRequest(http.MethodGet, g.url(path), nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := c.Do(req)
		if err != nil {
			fail("%s (%q): %v", path, cookie, err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			fail("%s with cookie %q: got %q, want %q", path, cookie, b, want)
		}
		if path == "/login" && resp.Header.Get("Set-Cookie") == "" {
			fail("/login without its Set-Cookie")
		}
	}
	for range rounds { // bursts of concurrent requests, so that any collapsing or micro-caching would show
		for range each {
			wg.Go(func() { ask("/account", "user=alice", "<p>hello alice</p>") })
			wg.Go(func() { ask("/account", "user=carol", "<p>hello carol</p>") })
			wg.Go(func() { ask("/account", "", "<p>hello </p>") })
			wg.Go(func() { ask("/login", "", "<p>welcome</p>") })
		}
		wg.Wait()
	}
	for _, f := range failures {
		t.Error(f)
	}
	counts := map[string]int{}
	for _, r := range ngx.Settled(t) {
		counts[r.URI+" "+r.Cookie]++
	}
	if n := counts["/account user=alice"]; n != rounds*each {
		t.Errorf("nginx saw %d of alice's %d requests", n, rounds*each)
	}
	if n := counts["/account user=carol"]; n != rounds*each {
		t.Errorf("nginx saw %d of carol's %d requests", n, rounds*each)
	}
	if n := counts["/login "]; n != rounds*each {
		t.Errorf("nginx saw %d of %d requests for a page that sets a cookie", n, rounds*each)
	}
	t.Logf("origin requests: %v", counts)
}

// TestShieldRevalidatesAndStandsInForAFailingOrigin: a small public asset is held for its max-age, then
// revalidated with its ETag (the origin answers 304 and sends no body again), and served stale when the
// origin fails.
func TestShieldRevalidatesAndStandsInForAFailingOrigin(t *testing.T) {
	o := newOrigin(t)
	css := []byte(strings.Repeat("p { margin: 0; }\n", 40))
	var full, notModified atomic.Int64
	var failing atomic.Bool
	o.mux.HandleFunc("/a.css", func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=1")
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		full.Add(1)
		w.Header().Set("Content-Type", "text/css")
		w.Write(css)
	})
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL)}})
	check := func(what string) *http.Response {
		t.Helper()
		resp, b := get(t, g.url("/a.css"))
		if resp.StatusCode != 200 || string(b) != string(css) {
			t.Fatalf("%s: status %d, %q", what, resp.StatusCode, b)
		}
		return resp
	}
	t0 := time.Now()
	check("first")
	if resp := check("fresh"); resp.Header.Get("X-Swarmgate") != "shield" || full.Load() != 1 {
		t.Fatalf("a fresh copy was not served by the shield: %v, %d origin requests", resp.Header, full.Load())
	}
	stale := func() bool { return time.Since(t0) > 1100*time.Millisecond } // max-age=1 has passed
	testutil.Eventually(t, 10*time.Second, "the copy to go stale", stale)
	check("stale")
	if full.Load() != 1 || notModified.Load() != 1 {
		t.Fatalf("revalidation: %d full responses, %d 304s; want 1 and 1", full.Load(), notModified.Load())
	}
	failing.Store(true)
	t0 = time.Now()
	testutil.Eventually(t, 10*time.Second, "the copy to go stale", stale)
	if resp := check("origin failing"); resp.Header.Get("X-Swarmgate") != "shield" {
		t.Fatalf("the stale copy did not stand in: %v", resp.Header)
	}
}

// TestShieldCollapsesAStreamedPage: a page the origin streams (chunked, no Content-Length, as dynamic sites
// send) is shared too: in a crowd, a burst of concurrent requests for it reaches the origin about once per
// micro-cache TTL, and every client gets the whole page.
func TestShieldCollapsesAStreamedPage(t *testing.T) {
	o := newOrigin(t)
	o.asset("/", "text/html", []byte("<p>home</p>"))
	page := strings.Repeat("<p>generated for everyone</p>\n", 200)
	var hits atomic.Int64
	o.mux.HandleFunc("/news", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		for i := 0; i < len(page); i += 1000 {
			io.WriteString(w, page[i:min(i+1000, len(page))])
			w.(http.Flusher).Flush()
			time.Sleep(time.Millisecond) // a page being generated
		}
	})
	g := crowdGateway(t, o.URL)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	declareCrowd(t, g, c)
	const n = 300
	var wg sync.WaitGroup
	var bad atomic.Int64
	sem := make(chan struct{}, 16)
	start := time.Now()
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			resp, err := c.Get(g.url("/news"))
			if err != nil {
				bad.Add(1)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != page {
				bad.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if bad.Load() > 0 {
		t.Errorf("%d of %d clients did not get the page", bad.Load(), n)
	}
	// One per TTL (1 s) for the time the burst took, one to start, one revalidating at the end.
	if max := int64(elapsed/DefaultMicroCacheTTL) + 2; hits.Load() > max {
		t.Errorf("the origin generated the page %d times for %d requests in %v; want at most %d", hits.Load(), n, elapsed, max)
	}
	t.Logf("%d requests in %v: the origin generated the page %d times", n, elapsed.Round(time.Millisecond), hits.Load())
}

// TestShieldReleasesWaitersOfAnOversizedStream: a shareable response of unknown length goes to the first
// client as it is read, and the shield keeps a copy for those waiting on the same URL. Once the copy passes
// shieldMaxEntry there is nothing to share: the others ask for their own at once. Before, they waited for the
// first client to read the whole body, at its pace, however slow (here it stops reading).
func TestShieldReleasesWaitersOfAnOversizedStream(t *testing.T) {
	o := newOrigin(t)
	o.asset("/", "text/html", []byte("<p>home</p>"))
	body := testBytes(shieldMaxEntry+32<<20, 7) // far more than the sockets between hold
	o.mux.HandleFunc("/big.bin", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("Content-Type", "application/octet-stream")
		for i := 0; i < len(body); i += 1 << 20 {
			if _, err := w.Write(body[i:min(i+1<<20, len(body))]); err != nil {
				return
			}
			w.(http.Flusher).Flush() // chunked: no Content-Length
		}
	})
	g := crowdGateway(t, o.URL)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	declareCrowd(t, g, c)
	first, err := c.Get(g.url("/big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Body.Close()
	if n, err := io.CopyN(io.Discard, first.Body, shieldMaxEntry+1<<20); err != nil {
		t.Fatalf("the first client read %d bytes: %v", n, err)
	}
	// The first client reads no more; a second asks for the same URL.
	second := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
	resp, err := second.Get(g.url("/big.bin"))
	if err != nil {
		t.Fatalf("a second client, while the first has stopped reading: %v", err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("a second client, while the first has stopped reading: %d of %d bytes, %v", len(got), len(body), err)
	}
}
