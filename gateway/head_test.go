package gateway

import (
	"bytes"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/swarmgate/swarmgate/gateway/catalog"
	"github.com/swarmgate/swarmgate/internal/testutil"
	"github.com/swarmgate/swarmgate/swarmapi"
)

// TestHeadTag: a page's head names the first piece of each media file, then of each image, in the page's
// order, within headBytes and headPieces.
func TestHeadTag(t *testing.T) {
	const pl = 256 << 10
	v := &catalog.Version{Name: "site-v", Info: metainfo.Info{PieceLength: pl}, Files: []catalog.File{
		{Path: "/hero.png", Size: 3*pl - 100, Offset: 0},   // pieces 0-2
		{Path: "/clip.mp4", Size: 10 * pl, Offset: 3 * pl}, // pieces 3-12
		{Path: "/b.png", Size: 2 * pl, Offset: 13 * pl},    // pieces 13-14
		{Path: "/d.png", Size: pl, Offset: 15 * pl},
		{Path: "/e.png", Size: pl, Offset: 16 * pl},
	}}
	tag := func(list string) string {
		return `<link rel="preload" href="/.swarm/head/site-v/` + list + `" as="fetch" crossorigin>`
	}
	for _, tc := range []struct {
		name string
		refs []headRef
		want string
	}{
		{"hero and video", []headRef{{"/hero.png", false}, {"/clip.mp4", true}}, tag("3,0")},
		{"images in order", []headRef{{"/b.png", false}, {"/hero.png", false}}, tag("13,0")},
		{"within the bytes", []headRef{{"/hero.png", false}, {"/clip.mp4", true}, {"/b.png", false}, {"/d.png", false}, {"/e.png", false}}, tag("3,0,13,15")},
		{"a file named twice", []headRef{{"/clip.mp4", true}, {"/clip.mp4", true}}, tag("3")},

		{"not in the version", []headRef{{"/other.png", false}}, ""},
		{"nothing", nil, ""},
	} {
		if got := headTag(v, tc.refs); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestHeadRewrite: the rewriter gives headTag the src of each element it rewrote, in the page's order, with
// whether it is media, and puts its answer just after the preloads of the manifest and the engine.
func TestHeadRewrite(t *testing.T) {
	base, _ := url.Parse("http://site.test/")
	rw := testRewriter("")
	var got []headRef
	rw.headTag = func(refs []headRef) string {
		got = refs
		return "<HEAD>"
	}
	in := `<img src="/small.png"><img src="/big.jpg"><video><source src="/movie.mp4"></video>` +
		`<img srcset="/big2.jpg 2x"><img src="http://site.test/big2.jpg?x"><audio src="/song.mp3?v=1"></audio>`
	out := string(rw.rewrite([]byte(in)))
	if !strings.HasPrefix(out, `<img src="/small.png">`+testPreloadTag+`<HEAD><img data-swarm-src="/big.jpg">`) {
		t.Errorf("the head is not just after the preloads: %s", out)
	}
	want := []headRef{{"/big.jpg", false}, {"/movie.mp4", true}, {"/big2.jpg?x", false}, {"/song.mp3?v=1", true}}
	if len(got) != len(want) {
		t.Fatalf("headTag got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("headTag got %v, want %v", got, want)
		}
	}
	// A page with nothing rewritten has no head, and headTag is not asked.
	got = nil
	rw = &htmlRewriter{base: base, inSwarm: func(string) bool { return false }, headTag: rw.headTag}
	if out := string(rw.rewrite([]byte(in))); out != in || got != nil {
		t.Errorf("a page with nothing rewritten: %s, headTag asked for %v", out, got)
	}
}

// TestServeHead: a page rewritten outside a crowd preloads its head, and the gateway answers it with the
// pieces it names, each without its padding, one after another; a malformed list is refused.
func TestServeHead(t *testing.T) {
	o := newOrigin(t)
	hero, clip := testBytes(700_000, 1), testBytes(1_500_000, 2)
	o.asset("/hero.jpg", "image/jpeg", hero, "Cache-Control", "max-age=60")
	o.asset("/clip.mp4", "video/mp4", clip, "Cache-Control", "max-age=60")
	o.asset("/page.html", "text/html", []byte(`<html><head><script src="/.swarm/loader.js" async></script></head>`+
		`<body><img src="/hero.jpg"><video src="/clip.mp4" muted autoplay></video></body></html>`))
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL)}})
	get(t, g.url("/hero.jpg"))
	get(t, g.url("/clip.mp4"))
	testutil.Eventually(t, 10*time.Second, "a version with both files", func() bool {
		v := g.Catalog().Current()
		if v == nil {
			return false
		}
		_, a := v.File("/hero.jpg")
		_, b := v.File("/clip.mp4")
		return a && b
	})
	v := g.Catalog().Current()
	pl := v.Info.PieceLength
	h, _ := v.File("/hero.jpg")
	c, _ := v.File("/clip.mp4")
	first := func(f catalog.File) int64 { return f.Offset / pl }
	_, page := get(t, g.url("/page.html"))
	m := regexp.MustCompile(`<link rel="preload" href="(/\.swarm/head/[^"]+)" as="fetch" crossorigin>`).FindStringSubmatch(string(page))
	if m == nil {
		t.Fatalf("the page has no head: %s", page)
	}
	href := m[1]
	// The video's first piece, then the hero's.
	var want []byte
	var names []string
	for _, i := range []int64{first(c), first(h)} {
		names = append(names, strconv.FormatInt(i, 10))
		f, body := h, hero
		if i*pl >= c.Offset && i*pl < c.Offset+c.Size {
			f, body = c, clip
		}
		off := i*pl - f.Offset
		want = append(want, body[off:min(off+pl, f.Size)]...)
	}
	if href != swarmapi.PathHead+v.Name+"/"+strings.Join(names, ",") {
		t.Fatalf("the page's head is %s, want pieces %v of %s (piece length %d)", href, names, v.Name, pl)
	}
	resp, body := get(t, g.url(href))
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Fatalf("head: HTTP %d, %d bytes, want %d bytes of the files' pieces", resp.StatusCode, len(body), len(want))
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("head Cache-Control %q, want immutable", cc)
	}
	for list, code := range map[string]int{
		"0,0":               http.StatusBadRequest,
		"-1":                http.StatusBadRequest,
		"01":                http.StatusBadRequest,
		"99999":             http.StatusBadRequest,
		"0,1,2,3,4,5,6,7,8": http.StatusBadRequest, // more than headPieces
		"x":                 http.StatusBadRequest,
	} {
		if resp, _ := get(t, g.url(swarmapi.PathHead+v.Name+"/"+list)); resp.StatusCode != code {
			t.Errorf("head %q: HTTP %d, want %d", list, resp.StatusCode, code)
		}
	}
	if resp, _ := get(t, g.url(swarmapi.PathHead+"site-nope/0")); resp.StatusCode != http.StatusNotFound {
		t.Errorf("head of an unknown version: HTTP %d, want 404", resp.StatusCode)
	}
}
