package js_test

// The loopback environment TestP2P runs in (p2p_test.go has the tests).

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/swarmgate/swarmgate/internal/browsertest"
	"github.com/swarmgate/swarmgate/internal/testlog"
	"github.com/swarmgate/swarmgate/tracker"
)

// p2pEnv is the loopback site of a test: the core bundle, stock WebTorrent, a page, a webseed (BEP 19) over
// every test torrent, and a tracker per subtest.
type p2pEnv struct {
	srv  *httptest.Server
	mux  *http.ServeMux
	root string // webseed root: <root>/<torrent name>/<path>
	b    *browsertest.Browser

	mu       sync.Mutex
	requests map[string]int              // webseed requests by path
	trackers map[string]*tracker.Tracker // by path
}

func newP2PEnv(t testing.TB) *p2pEnv {
	core := buildCore(t)
	units := bundle(t, "testdata/p2p_units.ts")
	wt := browsertest.RepoFile(t, "node_modules/webtorrent/dist/webtorrent.min.js")
	e := &p2pEnv{mux: http.NewServeMux(), root: t.TempDir(), requests: map[string]int{}, trackers: map[string]*tracker.Tracker{}}
	e.mux.HandleFunc("GET /p2p.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = w.Write(core)
	})
	e.mux.HandleFunc("GET /units.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = w.Write(units)
	})
	e.mux.HandleFunc("GET /webtorrent.min.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, wt) })
	e.mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	e.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, "testdata/p2p.html") })
	files := http.StripPrefix("/seed/", http.FileServer(http.Dir(e.root)))
	e.mux.HandleFunc("GET /seed/", func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.requests[r.URL.Path]++
		e.mu.Unlock()
		files.ServeHTTP(w, r)
	})
	e.srv = httptest.NewServer(e.mux)
	t.Cleanup(e.srv.Close)
	e.b = browsertest.Start(t)
	return e
}

// tracker mounts a fresh tracker for one subtest and returns it with its ws:// URL.
func (e *p2pEnv) tracker(t testing.TB) (*tracker.Tracker, string) {
	path := "/announce/" + strings.ReplaceAll(t.Name(), "/", "-")
	trk := e.restartTracker(t, path)
	e.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		trk := e.trackers[path]
		e.mu.Unlock()
		trk.ServeHTTP(w, r)
	})
	return trk, "ws" + strings.TrimPrefix(e.srv.URL, "http") + path
}

// restartTracker closes the tracker at path, if any (with every socket on it), and puts a fresh one there.
func (e *p2pEnv) restartTracker(t testing.TB, path string) *tracker.Tracker {
	trk := tracker.New(tracker.Config{Logger: testlog.New(t, slog.LevelWarn)})
	t.Cleanup(func() { _ = trk.Close() })
	e.mu.Lock()
	old := e.trackers[path]
	e.trackers[path] = trk
	e.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return trk
}

// webseedRequests counts requests for paths under prefix.
func (e *p2pEnv) webseedRequests(prefix string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for p, c := range e.requests {
		if strings.HasPrefix(p, prefix) {
			n += c
		}
	}
	return n
}

// page opens a visitor's page with the helpers of testPage loaded.
func (e *p2pEnv) page(t *testing.T) *browsertest.Page {
	t.Helper()
	p := e.b.NewPage()
	if err := p.Do(20*time.Second, chromedp.Navigate(e.srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := browsertest.Eval[bool](p, 10*time.Second, `window.ready`); err != nil {
		t.Fatalf("test page: %v", err)
	}
	return p
}
