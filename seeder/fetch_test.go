package seeder

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/swarmgate/swarmgate/uplink"
)

// TestFetchTakesFirstFilesFirst: a helper told which files a page needs first asks its source for them
// before the rest, in the order given. Its only source is a BEP 19 webseed, which anacrolix would otherwise
// read from the torrent's first file on.
func TestFetchTakesFirstFilesFirst(t *testing.T) {
	dir := t.TempDir()
	const n, size = 40, 16 << 10
	for i := range n {
		b := make([]byte, size)
		_, _ = rand.Read(b)
		if err := os.MkdirAll(filepath.Join(dir, "site"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "site", fmt.Sprintf("f%02d.bin", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	info := metainfo.Info{PieceLength: size}
	if err := info.BuildFromFilePath(filepath.Join(dir, "site")); err != nil {
		t.Fatal(err)
	}
	infoBytes, err := bencode.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	mi := &metainfo.MetaInfo{InfoBytes: infoBytes}

	var mu sync.Mutex
	var asked []string // each file's first request, in order
	files := http.FileServer(http.Dir(dir))
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if !slices.Contains(asked, r.URL.Path) {
			asked = append(asked, r.URL.Path)
		}
		mu.Unlock()
		files.ServeHTTP(w, r)
	}))
	defer ws.Close()

	helper := startSeeder(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src := Sources{Webseeds: []string{ws.URL + "/"}, First: []string{"f39.bin", "nope.bin", "f20.bin", "f39.bin"}}
	if err := helper.Fetch(ctx, mi, t.TempDir(), src, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("files in the order first asked for: %q", asked)
	if len(asked) != n {
		t.Fatalf("%d files asked for, want %d", len(asked), n)
	}
	at := func(name string) int { return slices.Index(asked, "/site/"+name) }
	if at("f39.bin") != 0 || at("f20.bin") > at("f00.bin") {
		t.Errorf("f39 asked for %dth, f20 %dth and f00 %dth: want f39 first, then f20 before f00", at("f39.bin"), at("f20.bin"), at("f00.bin"))
	}
}

// countingProxy forwards TCP connections to target and counts the bytes target sends through it.
func countingProxy(t *testing.T, target string) (addr string, sent *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sent = new(atomic.Int64)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() {
				defer wg.Done()
				n, _ := io.Copy(c, up)
				sent.Add(n)
				_ = c.Close()
			}()
		}
	}()
	return ln.Addr().String(), sent
}

// heldBackSources are a site's peer and webseed holding mi's data in dir, each counting what it sends.
func heldBackSources(t *testing.T, mi *metainfo.MetaInfo, dir string) (peer, webseed string, peerSent, webseedSent *atomic.Int64) {
	t.Helper()
	peer, peerSent = countingProxy(t, seedFrom(t, mi, dir, nil))
	webseedSent = new(atomic.Int64)
	files := http.FileServer(http.Dir(dir))
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w, n: webseedSent}
		files.ServeHTTP(cw, r)
	}))
	t.Cleanup(ws.Close)
	return peer, ws.URL + "/", peerSent, webseedSent
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

// TestFetchPrefersFellows: a helper whose fellow helper holds the version takes all of it from the fellow,
// and nothing from the site's peer and webseed, which it has as well.
func TestFetchPrefersFellows(t *testing.T) {
	dir := t.TempDir()
	mi, data := makeTorrent(t, dir, "a.bin", 4<<20)
	fellow := seedFrom(t, mi, dir, nil)
	peer, webseed, peerSent, webseedSent := heldBackSources(t, mi, dir)
	fetchFrom(t, mi, data, Sources{PreferredPeers: []string{fellow}, Peers: []string{peer}, Webseeds: []string{webseed}})
	if p, w := peerSent.Load(), webseedSent.Load(); p != 0 || w != 0 {
		t.Errorf("the site's peer sent %d bytes and its webseed %d with a fellow holding everything; want 0 and 0", p, w)
	}
}

// TestFetchTurnsToHeldBackSources: a fellow that gives nothing (here, one that cannot be reached) holds the
// fetch back for holdBack only; it then completes from the site's webseed.
func TestFetchTurnsToHeldBackSources(t *testing.T) {
	dir := t.TempDir()
	mi, data := makeTorrent(t, dir, "a.bin", 1<<20)
	_, webseed, _, webseedSent := heldBackSources(t, mi, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	_ = ln.Close()
	fetchFrom(t, mi, data, Sources{PreferredPeers: []string{gone}, Webseeds: []string{webseed}})
	if w := webseedSent.Load(); w < int64(len(data)) {
		t.Errorf("the webseed sent %d bytes; want the whole %d", w, len(data))
	}
}

// TestFetchTurnsFromASlowFellow: a fellow whose link is full (here shaped to 100 KB/s) falls behind
// holdBackRate, and the fetch takes the rest from the site's webseed as well. (anacrolix keeps asking the
// slow peer beside a fast webseed: the fetch takes 5 to 20 s here, as it does when both are given at once.)
func TestFetchTurnsFromASlowFellow(t *testing.T) {
	dir := t.TempDir()
	mi, data := makeTorrent(t, dir, "a.bin", 2<<20)
	link, err := uplink.New(100_000)
	if err != nil {
		t.Fatal(err)
	}
	fellow := seedFrom(t, mi, dir, link.Conn)
	_, webseed, _, webseedSent := heldBackSources(t, mi, dir)
	fetchFrom(t, mi, data, Sources{PreferredPeers: []string{fellow}, Webseeds: []string{webseed}})
	t.Logf("%d bytes from the webseed", webseedSent.Load())
	if webseedSent.Load() == 0 {
		t.Error("nothing came from the webseed")
	}
}

// seedFrom seeds mi's data in dir on a BitTorrent listener, its writes shaped by shape if not nil, and
// returns the listener's address.
func seedFrom(t *testing.T, mi *metainfo.MetaInfo, dir string, shape func(net.Conn) net.Conn) string {
	t.Helper()
	s := newSeeder(t, Config{ListenAddr: "127.0.0.1:0", Shape: shape})
	if err := s.AddTorrent(mi, dir); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", s.ListenPort())
}

// fetchFrom fetches mi from src with a seeder of its own and checks that the file it wrote holds data.
func fetchFrom(t *testing.T, mi *metainfo.MetaInfo, data []byte, src Sources) {
	t.Helper()
	helper := newSeeder(t, Config{ListenAddr: "127.0.0.1:0"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := t.TempDir()
	start := time.Now()
	if err := helper.Fetch(ctx, mi, out, src, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("fetched in %v", time.Since(start).Round(time.Millisecond))
	checkFetched(t, filepath.Join(out, "a.bin"), data)
}

func checkFetched(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, not the torrent's %d", path, len(got), len(want))
	}
}
