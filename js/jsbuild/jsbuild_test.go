package jsbuild

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDistIsCurrent fails when js/dist does not hold what `go generate ./js` would write now.
func TestDistIsCurrent(t *testing.T) {
	bundles, err := Build("..")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, b := range bundles {
		want[b.Name] = true
		got, err := os.ReadFile(filepath.Join("..", "dist", b.Name))
		if err != nil || !bytes.Equal(got, b.Contents) {
			t.Errorf("js/dist/%s is stale: run go generate ./js", b.Name)
		}
		t.Logf("%s: %d bytes, %d gzipped", b.Name, len(b.Contents), b.GzipSize())
	}
	files, _ := filepath.Glob(filepath.Join("..", "dist", "*"))
	for _, f := range files {
		if !want[filepath.Base(f)] {
			t.Errorf("js/dist/%s is not a bundle any more: run go generate ./js", filepath.Base(f))
		}
	}
}

// TestLoaderIsTiny holds the loader, which every page view downloads, under 3 KB gzipped.
func TestLoaderIsTiny(t *testing.T) {
	bundles, err := Build("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bundles {
		if b.Name == "loader.js" {
			if n := b.GzipSize(); n >= 3000 {
				t.Fatalf("loader is %d bytes gzipped; the budget is 3000", n)
			}
			return
		}
	}
	t.Fatal("no loader bundle")
}

// TestEngineIsSmall holds the engine, which every P2P page view downloads, within 25 KB gzipped (the
// webtorrent bundle it replaced was about 72 KB).
func TestEngineIsSmall(t *testing.T) {
	bundles, err := Build("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bundles {
		if strings.HasPrefix(b.Name, "engine-") {
			if n := b.GzipSize(); n > 25<<10 {
				t.Fatalf("engine is %d bytes gzipped; the budget is %d", n, 25<<10)
			}
			return
		}
	}
	t.Fatal("no engine bundle")
}
