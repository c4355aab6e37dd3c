package gateway

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testutil"
	"github.com/swarmgate/swarmgate/swarmapi"
	xhtml "golang.org/x/net/html"
)

func TestRewriteHTML(t *testing.T) {
	swarm := map[string]bool{"/big.jpg": true, "/big@2x.jpg": true, "/movie.mp4": true, "/song.mp3?v=1": true}
	cases := []struct{ name, in, want string }{
		{"img src", `<p><img src="/big.jpg" alt="a &amp; b"></p>`,
			`<p><img data-swarm-src="/big.jpg" alt="a &amp; b"><noscript><img src="/big.jpg" alt="a &amp; b"></noscript></p>`},
		{"relative and absolute same-origin", `<img src="big.jpg"><img src="http://site.test/big.jpg">`,
			`<img data-swarm-src="big.jpg"><noscript><img src="big.jpg"></noscript><img data-swarm-src="http://site.test/big.jpg"><noscript><img src="http://site.test/big.jpg"></noscript>`},
		{"other origin untouched", `<img src="http://cdn.test/big.jpg">`, `<img src="http://cdn.test/big.jpg">`},
		{"not in swarm untouched", `<img src="/small.png">`, `<img src="/small.png">`},
		{"srcset", `<img src="/small.png" srcset="/big.jpg 1x, /big@2x.jpg 2x">`,
			`<img src="/small.png" data-swarm-srcset="/big.jpg 1x, /big@2x.jpg 2x"><noscript><img src="/small.png" srcset="/big.jpg 1x, /big@2x.jpg 2x"></noscript>`},
		{"video with sources", `<video controls><source src="/movie.mp4" type="video/mp4"><track src="/t.vtt"></video>`,
			`<video controls><source data-swarm-src="/movie.mp4" type="video/mp4"><track src="/t.vtt"></video><noscript><video controls><source src="/movie.mp4" type="video/mp4"><track src="/t.vtt"></video></noscript>`},
		{"audio src with query", `<audio src="/song.mp3?v=1"></audio>`,
			`<audio data-swarm-src="/song.mp3?v=1"></audio><noscript><audio src="/song.mp3?v=1"></audio></noscript>`},
		{"video not in swarm kept whole", `<video src="/other.mp4"><source src="/x.webm"></video>`, `<video src="/other.mp4"><source src="/x.webm"></video>`},
		{"script text untouched", `<script>var s = '<img src="/big.jpg">'</script>`, `<script>var s = '<img src="/big.jpg">'</script>`},
	}
	base, _ := url.Parse("http://site.test/page/")
	base, _ = base.Parse("/index.html")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rw := &htmlRewriter{base: base, inSwarm: func(p string) bool { return swarm[p] }, move: true}
			if got := string(rw.rewrite([]byte(tc.in))); got != tc.want {
				t.Fatalf("\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestNamedInDocumentOrder: whether it rewrites the page or passes it through, the rewriter lists the swarm
// files that the page's heavy elements name in their src, in document order: what helpers fetch first.
func TestNamedInDocumentOrder(t *testing.T) {
	base, _ := url.Parse("http://site.test/index.html")
	in := `<img src="/small.png"><img src="/big.jpg"><video><source src="/movie.mp4"><track src="/big2.jpg"></video>` +
		`<img srcset="/big2.jpg 2x"><img src="http://cdn.test/big2.jpg"><script>x = '<img src="/big3.jpg">'</script>` +
		`<audio src="/song.mp3?v=1"></audio><img src="big2.jpg">`
	want := []string{"/big.jpg", "/movie.mp4", "/song.mp3?v=1", "/big2.jpg"}
	inSwarm := func(p string) bool { return p != "/small.png" }
	for _, move := range []bool{false, true} {
		rw := &htmlRewriter{base: base, inSwarm: inSwarm, move: move}
		out := string(rw.rewrite([]byte(in)))
		if !slices.Equal(rw.named, want) {
			t.Errorf("move %v: named %q, want %q", move, rw.named, want)
		}
		if changed := out != in; changed != move {
			t.Errorf("move %v: page changed %v: %s", move, changed, out)
		}
	}
}

func TestInjectLoader(t *testing.T) {
	base, _ := url.Parse("http://site.test/")
	tag := `<script src="/.swarm/loader.js" async></script>`
	for in, want := range map[string]string{
		`<html><head><title>x</title></head><body></body></html>`: `<html><head><title>x</title>` + tag + `</head><body></body></html>`,
		`<p>no head</p>`: `<p>no head</p>` + tag,
	} {
		rw := &htmlRewriter{base: base, inSwarm: func(string) bool { return false }, loaderTag: tag}
		if got := string(rw.rewrite([]byte(in))); got != want {
			t.Fatalf("got %s want %s", got, want)
		}
	}
}

// TestPreloadBeforeTheFirstRewrite checks that the engine's preload comes once, just before the first element
// rewritten (images and media alike), and never in a page with nothing rewritten.
func TestPreloadBeforeTheFirstRewrite(t *testing.T) {
	for in, want := range map[string]string{
		`<p>x</p><img src="/small.png"><img src="/big.jpg"><img src="/big2.jpg">`: `<p>x</p><img src="/small.png">` + testPreloadTag +
			`<img data-swarm-src="/big.jpg"><noscript><img src="/big.jpg"></noscript><img data-swarm-src="/big2.jpg"><noscript><img src="/big2.jpg"></noscript>`,
		`<video src="/movie.mp4"></video><img src="/big.jpg">`: testPreloadTag + `<video data-swarm-src="/movie.mp4"></video><noscript><video src="/movie.mp4"></video></noscript>` +
			`<img data-swarm-src="/big.jpg"><noscript><img src="/big.jpg"></noscript>`,
		`<p><img src="/small.png"></p>`: `<p><img src="/small.png"></p>`,
	} {
		if got := string(testRewriter("").rewrite([]byte(in))); got != want {
			t.Errorf("%s\n got %s\nwant %s", in, got, want)
		}
	}
}

func TestProxiedPagesAreRewrittenOnlyWithTheLoader(t *testing.T) {
	o := newOrigin(t)
	o.asset("/hero.jpg", "image/jpeg", testBytes(90_000, 9), "Cache-Control", "max-age=60")
	o.asset("/with.html", "text/html", []byte(`<html><head><script src="/.swarm/loader.js" async></script></head><body><img src="/hero.jpg"></body></html>`))
	o.asset("/without.html", "text/html", []byte(`<html><head></head><body><img src="/hero.jpg"></body></html>`))
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL)}})
	get(t, g.url("/hero.jpg"))
	testutil.Eventually(t, 10*time.Second, "a version", func() bool { return g.Catalog().Current() != nil })
	_, page := get(t, g.url("/with.html"))
	if !strings.Contains(string(page), `<img data-swarm-src="/hero.jpg">`) {
		t.Fatalf("page with the loader not rewritten: %s", page)
	}
	// The page preloads the manifest and the engine the manifest names, so that the browser fetches them
	// beside the loader, and, outside a crowd, its head (head.go): the hero's first piece.
	var m swarmapi.Manifest
	if _, b := get(t, g.url(swarmapi.PathManifest)); json.Unmarshal(b, &m) != nil || m.Engine == "" {
		t.Fatalf("manifest: %s", b)
	}
	preload := `<link rel="preload" href="` + swarmapi.PathManifest + `" as="fetch" crossorigin><link rel="modulepreload" href="` + m.Engine + `">` +
		`<link rel="preload" href="` + swarmapi.PathHead + m.Version + `/0" as="fetch" crossorigin>`
	if !strings.Contains(string(page), preload+`<img data-swarm-src="/hero.jpg">`) {
		t.Fatalf("page does not preload the manifest, the engine %s and its head before its first rewritten element: %s", m.Engine, page)
	}
	// Without the loader nothing would give the image its src back: the page must pass through untouched.
	if _, b := get(t, g.url("/without.html")); !strings.Contains(string(b), `<img src="/hero.jpg">`) || strings.Contains(string(b), "swarm") {
		t.Fatalf("page without the loader was changed: %s", b)
	}
	g2 := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(o.URL), Inject: true}})
	get(t, g2.url("/hero.jpg"))
	testutil.Eventually(t, 10*time.Second, "a version", func() bool { return g2.Catalog().Current() != nil })
	_, b := get(t, g2.url("/without.html"))
	if !strings.Contains(string(b), `<script src="/.swarm/loader.js" async></script></head>`) || !strings.Contains(string(b), `data-swarm-src="/hero.jpg"`) {
		t.Fatalf("--inject page: %s", b)
	}
}

// hostilePages are pages written to make the rewriter emit markup the origin did not send (security issue #12):
// attribute values that would close a <noscript>, contexts where the tokenizer alone misreads the page (raw
// text, foreign content, an existing <noscript> read with scripting off, <select>, <template>), and places
// where the loader would be injected. The fuzz target starts from them.
var hostilePages = []struct{ name, page string }{
	{"issue payload", `<p><img src="/big.jpg" alt="</noscript><img src=x onerror=alert(1)>"></p>`},
	{"end tag case and space", `<img src="/big.jpg" alt="</NoScript ><script>alert(1)</script>">`},
	{"end tag with solidus", `<img src="/big.jpg" alt="</noscript/><svg onload=alert(1)>">`},
	{"unquoted", `<img src=/big.jpg alt=</noscript><img/src=x/onerror=alert(1)>`},
	{"quotes and ampersands", `<img src="/big.jpg" title='a"b<c>d&amp;e&quot;' alt=x>`},
	{"name with quote", `<img src="/big.jpg" "onerror=alert(1) x'y=1>`},
	{"duplicate src after", `<img src="/big.jpg" src="/small.png" onerror="alert(1)">`},
	{"duplicate src before", `<img src="/small.png" src="/big.jpg" onerror="alert(1)">`},
	{"already has data-swarm-src", `<img data-swarm-src="javascript:alert(1)" src="/big.jpg">`},
	{"javascript and data urls", `<img src="javascript:alert(1)"><img src=" JAVASCRIPT:alert(1)"><img srcset="data:image/png;base64,AAAA 1x, /big.jpg 2x">`},
	{"srcset commas", `<img srcset="/big.jpg?a=1,2 1x,/big@2x.jpg 2x, /small.png (max-width: 1px, 2px) 3x">`},
	{"textarea", `<textarea><img src="/big.jpg" alt="</textarea><img src=x onerror=alert(1)>"></textarea>`},
	{"title", `<title><img src="/big.jpg" alt="</noscript><script>alert(1)</script>"></title>`},
	{"script string", `<script>document.write('<img src="/big.jpg" alt="</noscript><img src=x onerror=alert(1)>">')</script>`},
	{"style", `<style>/* <img src="/big.jpg" alt="</noscript><img src=x onerror=alert(1)>"> */</style>`},
	{"template", `<template><img src="/big.jpg" alt="</noscript><img src=x onerror=alert(1)>"></template>`},
	{"svg style breaks out", `<svg><style><img src="/big.jpg" alt="</noscript><img src=x onerror=alert(1)>"></style></svg>`},
	{"svg style hides a tag in an attribute", `<svg><style><p title="</style></svg><img src=/big.jpg onmouseover=alert(1) alt=x>">`},
	{"svg title", `<svg><title>Menu</title><path d="M0 0"/></svg><img src="/big.jpg">`},
	{"svg integration point", `<svg><desc><div></svg><style><p title="</style><img src=/big.jpg onmouseover=alert(1)>">`},
	{"svg integration point with phrasing", `<svg><desc><a></svg></a></desc><style><p title="</style><img src=/big.jpg onmouseover=alert(1)>">`},
	{"svg breakout", `<svg><p><style><g title='</style><b title="'></svg><img src=/big.jpg onmouseover=alert(1) alt=x>">`},
	{"svg cdata", `<svg><![CDATA[ > <img src="/big.jpg" alt="]]><img src=x onerror=alert(1)>"> ]]></svg>`},
	{"math", `<math><mtext><img src="/big.jpg" alt="</noscript><img src=x onerror=alert(1)>"></mtext></math>`},
	{"noscript in page", `<noscript><img src="/big.jpg" alt="</noscript><img src=/big.jpg onerror=alert(1)>"></noscript>`},
	{"element inside noscript", `<noscript><img src="/big.jpg"></noscript><img src="/big.jpg">`},
	{"select", `<select><img src=/big.jpg><style><img src=/big.jpg alt="</style><img src=x onerror=alert(1)>"></style></select>`},
	{"table", `<table><tr><img src=/big.jpg alt="</noscript><script>alert(1)</script>"></table>`},
	{"frameset", `<frameset><noframes><img src=/big.jpg></noframes></frameset><img src=/big.jpg>`},
	{"comments", `<!-- <img src="/big.jpg"> --><img src="/big.jpg" alt="<!--"><!-- -->`},
	{"video attribute", `<video><source src="/movie.mp4"><p title="</noscript><img src=x onerror=alert(1)>"></video>`},
	{"video holding a noscript", `<video src="/movie.mp4"><noscript></noscript><script>alert(1)</script></video>`},
	{"video comment", `<video src="/movie.mp4"><!-- </noscript><img src=x onerror=alert(1)> --></video>`},
	{"video in a paragraph", `<p><video><source src="/movie.mp4"><p>fallback</video>`},
	{"head in a comment and a script", `<html><head><!-- </head> --><script>var s = "</head>"</script></head><body><img src="/big.jpg"></body></html>`},
	{"head in svg", `<svg></head></svg><img src="/big.jpg">`},
	{"unterminated comment", `<img src="/big.jpg"><!-- no end`},
	{"unterminated tag", `<img src="/big.jpg"><p title="`},
	{"unterminated script", `<img src="/big.jpg"><script>var a = 1;`},
}

// TestRewriteHostileMarkup checks each hostile page with rewriteDiff, with and without the loader injected, and
// that a rewritten page carries a loader a browser runs.
func TestRewriteHostileMarkup(t *testing.T) {
	for _, tc := range hostilePages {
		t.Run(tc.name, func(t *testing.T) {
			for _, tag := range []string{"", testLoaderTag} {
				out := testRewriter(tag).rewrite([]byte(tc.page))
				if err := rewriteDiff([]byte(tc.page), out, tag); err != nil {
					t.Fatalf("loader %q: %v\n in: %s\nout: %s", tag, err, tc.page, out)
				}
				if tag != "" && string(out) != tc.page && !loaderRuns(out) {
					t.Fatalf("rewritten without a loader that runs:\n in: %s\nout: %s", tc.page, out)
				}
			}
		})
	}
}

// loaderRuns reports whether the page, parsed with scripting on, has the injected loader as an HTML <script>
// outside <template>, <noscript> and foreign content.
func loaderRuns(page []byte) bool {
	doc, err := xhtml.ParseWithOptions(strings.NewReader(string(page)), xhtml.ParseOptionEnableScripting(true))
	if err != nil {
		return false
	}
	runs := false
	walk(doc, func(n *xhtml.Node) bool {
		if n.Type != xhtml.ElementNode {
			return true
		}
		if n.Namespace != "" || n.Data == "template" || n.Data == "noscript" {
			return false
		}
		if n.Data == "script" {
			for _, a := range n.Attr {
				runs = runs || (a.Key == "src" && a.Val == swarmapi.PathLoader)
			}
		}
		return true
	})
	return runs
}

func TestRewriteSerializesTheNoscriptCopy(t *testing.T) {
	for in, want := range map[string]string{
		`<img src="/big.jpg" alt="</noscript><img src=x onerror=alert(1)>">`: `<img data-swarm-src="/big.jpg" alt="&lt;/noscript&gt;&lt;img src=x onerror=alert(1)&gt;">` +
			`<noscript><img src="/big.jpg" alt="&lt;/noscript&gt;&lt;img src=x onerror=alert(1)&gt;"></noscript>`,
		`<IMG SRC=/big.jpg ALT='it&apos;s' src=/small.png hidden>`:    `<img data-swarm-src="/big.jpg" alt="it&#39;s" hidden><noscript><img src="/big.jpg" alt="it&#39;s" hidden></noscript>`,
		`<img src="/big.jpg" data-swarm-src="/small.png">`:            `<img src="/big.jpg" data-swarm-src="/small.png">`,
		`<img src="javascript:alert(1)"><img src="data:image/png,x">`: `<img src="javascript:alert(1)"><img src="data:image/png,x">`,
		`<video src="/movie.mp4">old <!-- x --> browser<track src="/t.vtt" default></video>`: `<video data-swarm-src="/movie.mp4">old <!-- x --> browser<track src="/t.vtt" default></video>` +
			`<noscript><video src="/movie.mp4"><track src="/t.vtt" default></video></noscript>`,
		`<video src="/movie.mp4"><a href="/movie.mp4">download</a></video>`: `<video src="/movie.mp4"><a href="/movie.mp4">download</a></video>`,
	} {
		if strings.Contains(want, "<noscript>") {
			want = testPreloadTag + want // the first element rewritten
		}
		if got := string(testRewriter("").rewrite([]byte(in))); got != want {
			t.Errorf("%s\n got %s\nwant %s", in, got, want)
		}
	}
}

func TestSrcsetURLs(t *testing.T) {
	for in, want := range map[string][]string{
		"":                                   nil,
		"/a.jpg":                             {"/a.jpg"},
		" /a.jpg 1x, /b.jpg 2x ":             {"/a.jpg", "/b.jpg"},
		"/a.jpg,/b.jpg":                      {"/a.jpg,/b.jpg"},
		"/a.jpg, /b.jpg":                     {"/a.jpg", "/b.jpg"},
		"/a.jpg,, /b.jpg":                    {"/a.jpg", "/b.jpg"},
		"data:image/png;base64,AA 1x, /b 2x": {"data:image/png;base64,AA", "/b"},
		"/a.jpg (x, y) 1x, /b.jpg":           {"/a.jpg", "/b.jpg"},
		",,, ,":                              nil,
	} {
		if got := srcsetURLs(in); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("srcsetURLs(%q) = %q, want %q", in, got, want)
		}
	}
}
