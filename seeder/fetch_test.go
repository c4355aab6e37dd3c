package seeder

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
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
