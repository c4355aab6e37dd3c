package webseed

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/swarmapi"
)

// TestProxy: what a ready helper does with the site's paths that no version holds.
func TestProxy(t *testing.T) {
	t.Parallel()
	big := testData(DefaultMaxCachedObject+1_000_000, 9)
	release := make(chan struct{})
	org := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		switch r.URL.Path {
		case "/page":
			hd.Set("Content-Type", "text/html")
			hd.Set("ETag", `"p1"`)
			fmt.Fprint(w, "<!doctype html><p>page</p>")
		case "/nostore", "/private", "/cookie", "/maxage0", "/vary":
			hd.Set("Cache-Control", map[string]string{"/nostore": "no-store", "/private": "private, max-age=60",
				"/maxage0": "max-age=0"}[r.URL.Path])
			if r.URL.Path == "/cookie" {
				hd.Set("Set-Cookie", "s=1")
			}
			if r.URL.Path == "/vary" {
				hd.Set("Vary", "Accept-Language")
			}
			fmt.Fprint(w, "not for sharing")
		case "/slow":
			<-release
			hd.Set("Cache-Control", "max-age=60")
			fmt.Fprint(w, "worth the wait")
		case "/big":
			hd.Set("Content-Type", "application/octet-stream")
			hd.Set("Content-Length", fmt.Sprint(len(big)))
			w.Write(big)
		case "/form":
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s", r.Method, body)
		case "/redirect":
			http.Redirect(w, r, "/page", http.StatusFound)
		case "/headers":
			hd.Set("Cache-Control", "no-store")
			fmt.Fprintf(w, "host=%s via=%s xff=%s", r.Host, r.Header.Get("Via"), r.Header.Get("X-Forwarded-For"))
		case "/hangup":
			c, _, _ := http.NewResponseController(w).Hijack()
			c.Close()
		default:
			http.NotFound(w, r)
		}
	})
	src := newSource(t)
	env := newHelper(t, "127.0.0.2", Config{})
	env.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	job := src.job(org.url)
	job.Peers = []string{src.peer}
	if err := env.h.Accept(job); err != nil {
		t.Fatal(err)
	}
	waitReady(t, env.h, job, 30*time.Second)

	t.Run("cached with a default lifetime", func(t *testing.T) {
		for range 3 {
			resp, body := env.get(t, "/page")
			if resp.StatusCode != http.StatusOK || string(body) != "<!doctype html><p>page</p>" ||
				resp.Header.Get("Content-Type") != "text/html" {
				t.Fatalf("%s %q %v", resp.Status, body, resp.Header)
			}
		}
		resp, body := env.get(t, "/page", "Range", "bytes=2-8")
		if resp.StatusCode != http.StatusPartialContent || string(body) != "doctype" {
			t.Fatalf("range from the cache: %s %q", resp.Status, body)
		}
		if resp, _ := env.get(t, "/page", "If-None-Match", `"p1"`); resp.StatusCode != http.StatusNotModified {
			t.Fatalf("revalidation against the cache: %s", resp.Status)
		}
		if n := org.count("/page"); n != 1 {
			t.Fatalf("origin asked %d times", n)
		}
	})

	t.Run("not shared", func(t *testing.T) {
		for _, p := range []string{"/nostore", "/private", "/cookie", "/maxage0", "/vary", "/headers"} {
			for range 2 {
				if resp, _ := env.get(t, p); resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: %s", p, resp.Status)
				}
			}
			if n := org.count(p); n != 2 {
				t.Errorf("%s: origin asked %d times, want 2", p, n)
			}
		}
		// A request with a cookie (or credentials) is passed through, whatever the answer.
		for range 2 {
			env.get(t, "/page?user", "Cookie", "s=1")
		}
		if n := org.count("/page?user"); n != 2 {
			t.Errorf("with a cookie: origin asked %d times", n)
		}
		// Every Cookie and Authorization header counts, not only the first: an empty one first hides nothing.
		for _, k := range []string{"Cookie", "Authorization"} {
			p := "/page?second-" + k
			for range 2 {
				req, err := http.NewRequest(http.MethodGet, env.url+p, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Host = testSite
				req.Header[k] = []string{"", "s=1"}
				resp, err := env.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if n := org.count(p); n != 2 {
				t.Errorf("with an empty %s header before a real one: origin asked %d times, want 2 (not shared)", k, n)
			}
		}
	})

	t.Run("concurrent misses ask once", func(t *testing.T) {
		const n = 8
		var wg sync.WaitGroup
		bodies := make([]string, n)
		for i := range n {
			wg.Go(func() {
				_, b := env.get(t, "/slow")
				bodies[i] = string(b)
			})
		}
		// Let every request reach the helper before the origin answers.
		deadline := time.Now().Add(10 * time.Second)
		for env.h.Stats().CacheMisses+env.h.Stats().CacheHits < 1 || org.count("/slow") == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the fill never reached the origin")
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Requests that arrive later join the flight or, after it, find the cache: either way, one origin
		// request.
		close(release)
		wg.Wait()
		for _, b := range bodies {
			if b != "worth the wait" {
				t.Fatalf("bodies %q", bodies)
			}
		}
		if c := org.count("/slow"); c != 1 {
			t.Fatalf("origin asked %d times", c)
		}
	})

	t.Run("large answers stream and are not kept", func(t *testing.T) {
		for range 2 {
			resp, body := env.get(t, "/big")
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, big) || resp.ContentLength != int64(len(big)) {
				t.Fatalf("%s, %d bytes", resp.Status, len(body))
			}
		}
		if n := org.count("/big"); n != 2 {
			t.Fatalf("origin asked %d times", n)
		}
	})

	t.Run("other methods and redirects pass through", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, env.url+"/form", strings.NewReader("a=1"))
		req.Host = testSite
		resp, err := env.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "POST a=1" {
			t.Fatalf("POST: %q", body)
		}
		resp, _ = env.get(t, "/redirect")
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/page" {
			t.Fatalf("redirect: %s %q", resp.Status, resp.Header.Get("Location"))
		}
	})

	t.Run("webseed of a version not held goes to the origin", func(t *testing.T) {
		p := swarmapi.PathSeed + "site-other/img/a.jpg"
		if resp, _ := env.get(t, p); resp.StatusCode != http.StatusNotFound || org.count(p) != 1 {
			t.Fatalf("%s, origin asked %d times", resp.Status, org.count(p))
		}
		// Without the site's name it is nobody's: not proxied.
		if resp, _ := env.do(t, http.MethodGet, "127.0.0.2", p); resp.StatusCode != http.StatusNotFound || org.count(p) != 1 {
			t.Fatalf("by address: %s, origin asked %d times", resp.Status, org.count(p))
		}
	})

	t.Run("forwarded as the site", func(t *testing.T) {
		_, body := env.get(t, "/headers")
		if want := "host=" + testSite + " via=1.1 " + viaToken + " xff=127.0.0.1"; string(body) != want {
			t.Fatalf("origin saw %q, want %q", body, want)
		}
	})

	t.Run("errors", func(t *testing.T) {
		if resp, _ := env.get(t, "/hangup"); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("origin hung up: %s", resp.Status)
		}
		if resp, _ := env.get(t, "/page", "Via", "1.1 "+viaToken); resp.StatusCode != http.StatusLoopDetected {
			t.Fatalf("loop: %s", resp.Status)
		}
		if resp, _ := env.do(t, http.MethodGet, "other.example", "/page"); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("another site: %s", resp.Status)
		}
	})

	st := env.h.Stats()
	if st.Served.Proxied.Requests == 0 || st.Served.Proxied.Bytes < 2*int64(len(big)) || st.OriginBytes < 2*int64(len(big)) ||
		st.CacheHits == 0 || st.CacheEntries == 0 || st.Served.Steered.Requests != 0 {
		t.Fatalf("stats %+v", st)
	}
}
