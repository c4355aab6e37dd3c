package webseed

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/seeder"
	"github.com/swarmgate/swarmgate/swarmapi"
)

// TestFetchOverBitTorrentAndServe: a helper fetches a real site version from the gateway's seeder over
// TCP/uTP only (no webseed), then serves it by Host, as a webseed, and proxies the rest to the origin;
// Release takes it all away.
func TestFetchOverBitTorrentAndServe(t *testing.T) {
	t.Parallel()
	src := newSource(t)
	org := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>page %s</title>", r.URL.Path)
	})
	env := newHelper(t, "127.0.0.2", Config{})
	job := src.job(org.url)
	job.Peers = []string{src.peer}

	start := time.Now()
	if err := env.h.Accept(job); err != nil {
		t.Fatal(err)
	}
	if err := env.h.Accept(job); err != nil { // the same request again: nothing new
		t.Fatalf("second Accept: %v", err)
	}
	st := waitReady(t, env.h, job, 30*time.Second)
	took := time.Since(start)
	t.Logf("accept to ready: %v for %d bytes (%.1f MB/s) over BitTorrent", took.Round(time.Millisecond), st.Total,
		float64(st.Total)/took.Seconds()/1e6)
	if st.Done != st.Total || st.Total != src.v.Info.TotalLength() {
		t.Fatalf("state %+v", st)
	}
	if src.wsServed.Load() != 0 {
		t.Fatal("the gateway's webseed was used")
	}
	if !env.seeder.Seeding(job.InfoHash) || !env.h.Ready(job.InfoHash) || !env.h.Serves("Launch.Example.:8080") {
		t.Fatal("ready job not seeded or served")
	}
	if sp := env.h.Spare(); sp >= 1 || sp <= 0 {
		t.Fatalf("spare %v with one of %d jobs", sp, DefaultMaxJobs)
	}

	// Steered clients: every file, byte for byte, with its type and an ETag; ranges; revalidation.
	for _, f := range src.files {
		resp, body := env.get(t, f.path)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, f.body) {
			t.Fatalf("%s: %s, %d bytes, identical %v", f.path, resp.Status, len(body), bytes.Equal(body, f.body))
		}
		if ct := resp.Header.Get("Content-Type"); ct != f.contentType {
			t.Fatalf("%s: Content-Type %q, want %q", f.path, ct, f.contentType)
		}
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Fatalf("%s: no ETag", f.path)
		}
		resp, body = env.get(t, f.path, "Range", "bytes=1000-65999")
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, f.body[1000:66000]) {
			t.Fatalf("%s range: %s, %d bytes", f.path, resp.Status, len(body))
		}
		if cr := resp.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes 1000-65999/%d", len(f.body)) {
			t.Fatalf("%s: Content-Range %q", f.path, cr)
		}
		if resp, _ = env.get(t, f.path, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
			t.Fatalf("%s revalidation: %s", f.path, resp.Status)
		}
	}

	// A path the version does not hold goes to the origin once, then comes from the cache.
	for range 3 {
		resp, body := env.get(t, "/index.html")
		if resp.StatusCode != http.StatusOK || string(body) != "<!doctype html><title>page /index.html</title>" {
			t.Fatalf("proxied: %s %q", resp.Status, body)
		}
	}
	if n := org.count("/index.html"); n != 1 {
		t.Fatalf("origin asked %d times for a page cached for %v", n, DefaultCacheTTL)
	}
	// No path of the version reached the origin.
	for _, f := range src.files {
		if org.count(f.path) != 0 {
			t.Fatalf("%s fetched from the origin", f.path)
		}
	}

	// The webseed, in the gateway's layout: ranges of files and of padding, identical to the gateway's.
	checkWebseedParity(t, env, src)

	stats := env.h.Stats()
	var want int64
	for _, f := range src.files {
		want += int64(len(f.body)) + 65000 // whole file, one range; 304s carry no body
	}
	if stats.Served.Steered.Bytes != want || stats.Served.Steered.Requests != int64(3*len(src.files)) {
		t.Fatalf("steered %+v, want %d bytes", stats.Served.Steered, want)
	}
	page := int64(len("<!doctype html><title>page /index.html</title>"))
	if stats.Served.Proxied.Bytes != 3*page || stats.Served.Proxied.Requests != 3 || stats.OriginBytes != page ||
		stats.CacheHits != 2 || stats.CacheMisses != 1 {
		t.Fatalf("proxy counters %+v", stats)
	}
	if stats.Served.Webseed.Bytes == 0 || stats.Jobs != 1 || stats.Ready != 1 {
		t.Fatalf("stats %+v", stats)
	}
	if jobs := env.h.Jobs(); len(jobs) != 1 || jobs[0].Site != testSite || jobs[0].Served != stats.Served {
		t.Fatalf("jobs %+v", jobs)
	}

	// Release: nothing served, nothing seeded, nothing on disk.
	if err := env.h.Release(job.InfoHash); err != nil {
		t.Fatal(err)
	}
	if resp, _ := env.get(t, src.files[0].path); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("after release: %s", resp.Status)
	}
	if resp, _ := env.get(t, "/index.html"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("after release, proxied: %s", resp.Status)
	}
	if resp, _ := env.do(t, http.MethodGet, "127.0.0.2", swarmapi.PathSeed+src.v.Name+"/img/hero.jpg"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("webseed after release: %s", resp.Status)
	}
	if env.seeder.Seeding(job.InfoHash) || env.h.Ready(job.InfoHash) || env.h.Serves(testSite) {
		t.Fatal("released job still seeded or served")
	}
	if ents, _ := os.ReadDir(env.dir); len(ents) != 0 {
		t.Fatalf("data left after release: %v", ents)
	}
	if st := env.h.Stats(); st.CacheEntries != 0 || st.Jobs != 0 {
		t.Fatalf("after release: %+v", st)
	}
	if sp := env.h.Spare(); sp != 1 {
		t.Fatalf("spare %v with no jobs", sp)
	}
}

// checkWebseedParity compares the helper's webseed with the version's own reads (what the gateway serves),
// for every file of the torrent, padding included, whole and in ranges.
func checkWebseedParity(t *testing.T, env *helperEnv, src *source) {
	t.Helper()
	pads := 0
	for _, fi := range src.v.Info.Files {
		tp := strings.Join(fi.Path, "/")
		if strings.Contains(fi.Attr, "p") {
			pads++
		}
		rc, n, err := src.v.Open(tp)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := io.ReadAll(rc)
		rc.Close()
		// What a BEP 19 client sends: each component path-escaped, below the torrent's name.
		u := swarmapi.PathSeed + src.v.Name + "/" + escapeComponents(fi.Path)
		resp, body := env.do(t, http.MethodGet, "127.0.0.2", u)
		if resp.StatusCode != http.StatusOK || int64(len(body)) != n || !bytes.Equal(body, want) {
			t.Fatalf("webseed %s: %s, %d bytes of %d", u, resp.Status, len(body), n)
		}
		lo, hi := n/3, n/3+n/4
		resp, body = env.do(t, http.MethodGet, "127.0.0.2", u, "Range", fmt.Sprintf("bytes=%d-%d", lo, hi))
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, want[lo:hi+1]) {
			t.Fatalf("webseed range %s: %s", u, resp.Status)
		}
	}
	if pads == 0 {
		t.Fatal("the test version has no padding files")
	}
	for _, p := range []string{"nope", "img/nope.jpg", ".pad/1", "../../etc/passwd"} {
		if resp, _ := env.do(t, http.MethodGet, "127.0.0.2", swarmapi.PathSeed+src.v.Name+"/"+p); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("webseed %s: %s", p, resp.Status)
		}
	}
	if resp, _ := env.do(t, http.MethodPost, "127.0.0.2", swarmapi.PathSeed+src.v.Name+"/img/hero.jpg"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("webseed POST: %s", resp.Status)
	}
}

// escapeComponents escapes path components the way anacrolix's webseed client does.
func escapeComponents(comps []string) string {
	out := make([]string, len(comps))
	for i, c := range comps {
		out[i] = strings.ReplaceAll(url.PathEscape(c), "+", "%2B")
	}
	return strings.Join(out, "/")
}

// TestFetchFromGatewayWebseedOnly: with no peer to dial, a helper fetches from the gateway's webseed alone.
func TestFetchFromGatewayWebseedOnly(t *testing.T) {
	t.Parallel()
	src := newSource(t)
	org := newOrigin(t, http.NotFound)
	env := newHelper(t, "127.0.0.2", Config{})
	job := src.job(org.url)
	job.Webseeds = []string{src.webseed}
	start := time.Now()
	if err := env.h.Accept(job); err != nil {
		t.Fatal(err)
	}
	st := waitReady(t, env.h, job, 45*time.Second)
	t.Logf("accept to ready from the gateway's webseed only: %v for %d bytes", time.Since(start).Round(time.Millisecond), st.Total)
	if src.wsServed.Load() < sumSizes(src.files) {
		t.Fatalf("gateway webseed served %d bytes, the files hold %d", src.wsServed.Load(), sumSizes(src.files))
	}
	checkOnDisk(t, env, src, job)
}

// TestHelperWebseedFeedsAnotherHelper: a helper that got the version over BitTorrent is the only source of a
// second helper, through its BEP 19 webseed: a real BitTorrent implementation reads the helper's layout.
func TestHelperWebseedFeedsAnotherHelper(t *testing.T) {
	t.Parallel()
	src := newSource(t)
	org := newOrigin(t, http.NotFound)
	a := newHelper(t, "127.0.0.2", Config{})
	job := src.job(org.url)
	job.Peers = []string{src.peer}
	if err := a.h.Accept(job); err != nil {
		t.Fatal(err)
	}
	waitReady(t, a.h, job, 30*time.Second)

	b := newHelper(t, "127.0.0.3", Config{})
	job.Peers, job.Webseeds = nil, []string{a.url + swarmapi.PathSeed}
	start := time.Now()
	if err := b.h.Accept(job); err != nil {
		t.Fatal(err)
	}
	st := waitReady(t, b.h, job, 45*time.Second)
	t.Logf("accept to ready from another helper's webseed only: %v for %d bytes", time.Since(start).Round(time.Millisecond), st.Total)
	if ws := a.h.Stats().Served.Webseed.Bytes; ws < sumSizes(src.files) {
		t.Fatalf("helper webseed served %d bytes, the files hold %d", ws, sumSizes(src.files))
	}
	checkOnDisk(t, b, src, job)
}

func sumSizes(files []siteFile) int64 {
	var n int64
	for _, f := range files {
		n += int64(len(f.body))
	}
	return n
}

// checkOnDisk compares a ready helper's files with the site's.
func checkOnDisk(t *testing.T, env *helperEnv, src *source, job Assignment) {
	t.Helper()
	for _, f := range src.files {
		got, err := os.ReadFile(filepath.Join(env.dir, job.InfoHash.HexString(), src.v.Name,
			filepath.FromSlash(strings.TrimPrefix(f.path, "/"))))
		if err != nil || !bytes.Equal(got, f.body) {
			t.Fatalf("%s on the helper: %v", f.path, err)
		}
	}
}

// BenchmarkAcceptToReady measures a helper taking on a ~10 MB version from a gateway seeder over TCP, from
// Accept to ready (fetched, every piece verified, files hashed).
func BenchmarkAcceptToReady(b *testing.B) {
	src := newSource(b)
	origin, _ := url.Parse("http://origin.test")
	job := src.job(origin)
	job.Peers = []string{src.peer}
	var total time.Duration
	for b.Loop() {
		sd, err := seeder.New(seeder.Config{DataDir: b.TempDir(), ListenAddr: "127.0.0.2:0", Logger: testLogger(b)})
		if err != nil {
			b.Fatal(err)
		}
		h, err := New(Config{DataDir: b.TempDir(), Seeder: sd, Logger: testLogger(b)})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := h.Accept(job); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		st, err := h.Wait(ctx, job.InfoHash)
		cancel()
		if err != nil || st.Phase != PhaseReady {
			b.Fatalf("%+v %v", st, err)
		}
		total += time.Since(start)
		b.SetBytes(st.Total)
		_ = h.Close()
		_ = sd.Close()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/ready")
}
