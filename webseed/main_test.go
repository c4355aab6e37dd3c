package webseed

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/swarmgate/swarmgate/gateway/catalog"
	"github.com/swarmgate/swarmgate/internal/testlog"
	"github.com/swarmgate/swarmgate/seeder"
	"github.com/swarmgate/swarmgate/swarmapi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testLogger logs to the test, at debug level when WEBSEED_DEBUG is set.
func testLogger(t testing.TB) *slog.Logger {
	return testlog.New(t, testlog.Level("WEBSEED_DEBUG", slog.LevelInfo))
}

const testSite = "launch.example"

// testData returns n pseudo-random bytes.
func testData(n int, seed uint64) []byte {
	var key [32]byte
	key[0] = byte(seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// siteFile is one file of a test site.
type siteFile struct {
	path, contentType string
	body              []byte
}

// testFiles is a site of about 10 MB: odd sizes (so padding files appear), a query in a path and an escaped
// character, as the gateway's catalogue keys them (by request URI).
func testFiles() []siteFile {
	return []siteFile{
		{"/img/hero.jpg", "image/jpeg", testData(4_000_017, 1)},
		{"/video/intro.mp4?v=2", "video/mp4", testData(5_000_000, 2)},
		{"/js/app.js", "text/javascript; charset=utf-8", testData(700_001, 3)},
		{"/fonts/inter%20var.woff2", "font/woff2", testData(300_003, 4)},
	}
}

// buildVersion builds a real site version with the gateway's catalogue.
func buildVersion(t testing.TB, files []siteFile) *catalog.Version {
	t.Helper()
	c, err := catalog.Open(catalog.Config{Dir: t.TempDir(), MinSize: 1, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, err := c.Learn(f.path, catalog.Meta{ContentType: f.contentType}, int64(len(f.body)), bytes.NewReader(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	v, _, err := c.Build()
	if err != nil || v == nil {
		t.Fatalf("build: %v %v", v, err)
	}
	return v
}

// newSeeder makes a seeder listening for BitTorrent peers on ip, closed when the test ends.
func newSeeder(t testing.TB, ip string) *seeder.Seeder {
	t.Helper()
	s, err := seeder.New(seeder.Config{DataDir: t.TempDir(), ListenAddr: ip + ":0", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("seeder close: %v", err)
		}
	})
	return s
}

// source is the gateway side: a version, seeded over TCP/uTP on 127.0.0.1, and served as a BEP 19 webseed
// the way the gateway serves it.
type source struct {
	v        *catalog.Version
	files    []siteFile
	seeder   *seeder.Seeder
	peer     string // host:port of the seeder's listener
	webseed  string // the webseed URL, ending in "/"
	wsServed atomic.Int64
}

func newSource(t testing.TB) *source {
	t.Helper()
	files := testFiles()
	src := &source{v: buildVersion(t, files), files: files, seeder: newSeeder(t, "127.0.0.1")}
	if err := src.seeder.AddTorrent(src.v.MetaInfo(nil, nil), src.v.Dir); err != nil {
		t.Fatal(err)
	}
	src.peer = fmt.Sprintf("127.0.0.1:%d", src.seeder.ListenPort())
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+swarmapi.PathSeed+"{version}/{path...}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("version") != src.v.Name {
			http.NotFound(w, r)
			return
		}
		f, _, err := src.v.Open(r.PathValue("path"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		cw := &countingWriter{ResponseWriter: w}
		http.ServeContent(cw, r, "", src.v.Built, f)
		src.wsServed.Add(cw.n)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	src.webseed = srv.URL + swarmapi.PathSeed
	return src
}

// job is the help request for the source's version. Its origin is on loopback, so it allows private addresses.
func (src *source) job(origin *url.URL) Assignment {
	j := Assignment{Site: testSite, Version: src.v.Name, InfoHash: src.v.InfoHash, InfoBytes: src.v.InfoBytes, Origin: origin,
		Files: make(map[string]FileMeta), AllowPrivate: true}
	for _, f := range src.v.Files {
		j.Files[f.Path] = FileMeta{ContentType: f.ContentType, SHA256: f.SHA256}
	}
	return j
}

// origin is a test origin: it counts requests by path and answers with handler.
type origin struct {
	srv  *httptest.Server
	url  *url.URL
	mu   sync.Mutex
	hits map[string]int
}

func newOrigin(t *testing.T, handler http.HandlerFunc) *origin {
	t.Helper()
	o := &origin{hits: make(map[string]int)}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.hits[r.URL.RequestURI()]++
		o.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(o.srv.Close)
	o.url, _ = url.Parse(o.srv.URL)
	return o
}

func (o *origin) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[path]
}

// helperEnv is a helper with its own seeder and HTTP server on ip.
type helperEnv struct {
	h      *Helper
	seeder *seeder.Seeder
	dir    string
	url    string // http://ip:port
	client *http.Client
}

func newHelper(t *testing.T, ip string, cfg Config) *helperEnv {
	t.Helper()
	e := &helperEnv{seeder: cfg.Seeder}
	if e.seeder == nil {
		e.seeder = newSeeder(t, ip)
	}
	cfg.Seeder = e.seeder
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	e.dir = cfg.DataDir
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	e.url = srv.URL
	tr := &http.Transport{DisableCompression: true}
	e.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(func() { // runs before the seeder's Close (registered earlier)
		srv.Close()
		tr.CloseIdleConnections()
		if err := h.Close(); err != nil {
			t.Errorf("helper close: %v", err)
		}
	})
	return e
}

// get requests path from the helper with Host: testSite and the given headers.
func (e *helperEnv) get(t *testing.T, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return e.do(t, http.MethodGet, testSite, path, hdr...)
}

func (e *helperEnv) do(t *testing.T, method, host, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// waitReady waits for a job to end its fetch and fails the test unless it is ready.
func waitReady(t *testing.T, h *Helper, j Assignment, within time.Duration) State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	st, err := h.Wait(ctx, j.InfoHash)
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != PhaseReady {
		t.Fatalf("job ended %s: %v", st.Phase, st.Err)
	}
	return st
}
