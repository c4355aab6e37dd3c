package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pathCases are URL paths (with queries) and whether the catalogue may store them; the fuzz target starts
// from them.
var pathCases = []struct {
	path string
	ok   bool
}{
	{"/a.jpg", true},
	{"/img/photo.png?v=3&w=200", true},
	{"/q?p=a/b", true}, // a slash in the query is a directory, like any other
	{"/" + strings.Repeat("a", maxComponent), true},
	{"/" + strings.Repeat("a", maxComponent+1), false},     // past NAME_MAX: every build would fail
	{"/a.jpg?" + strings.Repeat("q", maxComponent), false}, // the same, through the query
	{strings.Repeat("/abc", maxPath/4) + "/x", false},      // past maxPath
	{"relative", false}, {"/dir/", false}, {"/a/../b", false}, {"/a//b", false}, {"/./a", false},
	{"/.pad/3", false}, {"/.pad", false}, {"/x/.pad/3", true},
	{"/a\x00b", false}, {"/a b", false}, {"/a\\..\\b", false}, {"/caf\xc3\xa9", false}, {"/a\x7f", false},
	{"/?", true}, // the path "/" with an empty query is a file named "?"
}

func TestCheckPath(t *testing.T) {
	for _, tc := range pathCases {
		if err := CheckPath(tc.path); (err == nil) != tc.ok {
			t.Errorf("CheckPath(%.40q...) = %v, want ok %v", tc.path, err, tc.ok)
		} else if err != nil && !errors.Is(err, ErrBadPath) {
			t.Errorf("CheckPath(%.40q...) = %v, not ErrBadPath", tc.path, err)
		}
	}
}

// FuzzPathComponents: a path the catalogue accepts splits into components that join back to it, each of
// which can be a file name on every system the versions are laid out on.
func FuzzPathComponents(f *testing.F) {
	for _, tc := range pathCases {
		f.Add(tc.path)
	}
	f.Fuzz(func(t *testing.T, p string) {
		comps, err := pathComponents(p)
		if err != nil {
			return
		}
		if "/"+strings.Join(comps, "/") != p {
			t.Fatalf("%q splits into %q", p, comps)
		}
		for _, c := range comps {
			if c == "" || c == "." || c == ".." || len(c) > maxComponent || strings.ContainsAny(c, "/\\\x00") {
				t.Fatalf("%q has component %q", p, c)
			}
			if filepath.Base(c) != c || filepath.Clean(c) != c {
				t.Fatalf("%q: component %q is not one file name", p, c)
			}
		}
		if comps[0] == padDir {
			t.Fatalf("%q lies in the padding directory", p)
		}
	})
}

// TestBuildSkipsAResourceItCannotLayOut: a resource that cannot be laid out (here its blob is gone; a path
// clash does the same) is left out of the version and forgotten, instead of failing every build.
func TestBuildSkipsAResourceItCannotLayOut(t *testing.T) {
	c := open(t)
	learn(t, c, "/a.bin", testData(5000, 1))
	learn(t, c, "/b.bin", testData(5000, 2))
	b, _ := c.Lookup("/b.bin")
	if err := os.Remove(c.blobPath(b.SHA256)); err != nil {
		t.Fatal(err)
	}
	v, _, err := c.Build()
	if err != nil || v == nil || len(v.Files) != 1 || v.Files[0].Path != "/a.bin" {
		t.Fatalf("build: %v, %v", v, err)
	}
	if _, ok := c.Lookup("/b.bin"); ok {
		t.Error("the resource left out is still held")
	}
	learn(t, c, "/c.bin", testData(5000, 3))
	if v, _, err := c.Build(); err != nil || len(v.Files) != 2 {
		t.Fatalf("next build: %v, %v", v, err)
	}
}

// TestBuildSkipsAPathClash: "/a" as a file and "/a/b" below it cannot both be laid out; the version holds
// the first and later builds still succeed.
func TestBuildSkipsAPathClash(t *testing.T) {
	c := open(t)
	learn(t, c, "/a", testData(5000, 1))
	learn(t, c, "/a/b", testData(5000, 2))
	v, _, err := c.Build()
	if err != nil || v == nil || len(v.Files) != 1 || v.Files[0].Path != "/a" {
		t.Fatalf("build: %+v, %v", v, err)
	}
}

func TestQueryVariantsAreBounded(t *testing.T) {
	c, err := Open(Config{Dir: t.TempDir(), MinSize: 1000, PieceLength: 16 << 10, MaxResources: 20, MaxVariants: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		learn(t, c, fmt.Sprintf("/photo.png?v=%d", i), testData(2000, 1))
	}
	for i := range 5 {
		_, ok := c.Lookup(fmt.Sprintf("/photo.png?v=%d", i))
		if ok != (i < 3) {
			t.Errorf("variant %d held: %v", i, ok)
		}
	}
	if !learn(t, c, "/photo.png", testData(2000, 2)) {
		t.Error("the path without a query must not count as a variant")
	}
	// Queries may take half of MaxResources (10) at most, so that paths always find room.
	for i := range 12 {
		learn(t, c, fmt.Sprintf("/p%d.png?x", i), testData(2000, 1))
	}
	n := 0
	for _, r := range c.resources {
		if strings.Contains(r.Path, "?") {
			n++
		}
	}
	if n != 10 {
		t.Errorf("%d resources with a query, want 10", n)
	}
	if !learn(t, c, "/plain.png", testData(2000, 3)) {
		t.Error("a path without a query must still be stored")
	}
}

// TestOlderResponseDoesNotReplaceNewer: a slow learn that began before a faster one ends after it; the store
// keeps the newer response.
func TestOlderResponseDoesNotReplaceNewer(t *testing.T) {
	c := open(t)
	t0 := time.Now()
	newer, older := testData(5000, 2), testData(5000, 1)
	if _, err := c.Learn("/a", Meta{ContentType: "x", Received: t0}, int64(len(newer)), bytes.NewReader(newer)); err != nil {
		t.Fatal(err)
	}
	changed, err := c.Learn("/a", Meta{ContentType: "x", Received: t0.Add(-time.Second)}, int64(len(older)), bytes.NewReader(older))
	if err != nil || changed {
		t.Fatalf("older response: changed %v, %v", changed, err)
	}
	if r, _ := c.Lookup("/a"); r.Received != t0 {
		t.Error("the older response replaced the newer")
	}
}

func TestRefreshAndForget(t *testing.T) {
	c := open(t)
	learn(t, c, "/a", testData(5000, 1))
	r, _ := c.Lookup("/a")
	if _, _, err := c.Build(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	h := http.Header{"Cache-Control": {"max-age=9"}}
	got, ok := c.Refresh(r, h, now, now.Add(9*time.Second))
	if !ok || got.Header.Get("Cache-Control") != "max-age=9" || !got.Expires.Equal(now.Add(9*time.Second)) {
		t.Fatalf("refresh: %+v %v", got, ok)
	}
	body := testData(5000, 2)
	if _, err := c.Learn("/a", Meta{Received: time.Now()}, int64(len(body)), bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Refresh(r, h, time.Now(), time.Now()); ok {
		t.Error("a refresh of content no longer held applied")
	}
	c.Forget("/a")
	if _, ok := c.Lookup("/a"); ok || !c.Dirty() {
		t.Errorf("forgotten resource held %v, dirty %v", ok, c.Dirty())
	}
}

// TestShrinkingBelowMinSizeLeavesTheVersion: a resource that becomes too small to swarm is a change to the
// swarmable content, so the next version leaves it out.
func TestShrinkingBelowMinSizeLeavesTheVersion(t *testing.T) {
	c := open(t)
	learn(t, c, "/a", testData(5000, 1))
	learn(t, c, "/b", testData(5000, 2))
	if _, _, err := c.Build(); err != nil {
		t.Fatal(err)
	}
	if !learn(t, c, "/a", testData(500, 3)) {
		t.Error("a resource shrinking below MinSize is not a change")
	}
	v, _, err := c.Build()
	if err != nil || len(v.Files) != 1 || v.Files[0].Path != "/b" {
		t.Fatalf("build: %+v, %v", v, err)
	}
}
