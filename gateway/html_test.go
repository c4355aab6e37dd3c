package gateway

import (
	"net/url"
	"strings"
	"testing"
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
			rw := &htmlRewriter{base: base, inSwarm: func(p string) bool { return swarm[p] }}
			if got := string(rw.rewrite([]byte(tc.in))); got != tc.want {
				t.Fatalf("\n got %s\nwant %s", got, tc.want)
			}
		})
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

func TestProxiedPagesAreRewrittenOnlyWithTheLoader(t *testing.T) {
	o := newOrigin(t)
	o.asset("/hero.jpg", "image/jpeg", testBytes(90_000, 9), "Cache-Control", "max-age=60")
	o.asset("/with.html", "text/html", []byte(`<html><head><script src="/.swarm/loader.js" async></script></head><body><img src="/hero.jpg"></body></html>`))
	o.asset("/without.html", "text/html", []byte(`<html><head></head><body><img src="/hero.jpg"></body></html>`))
	g := startGateway(t, Config{Origin: mustURL(o.URL)})
	get(t, g.url("/hero.jpg"))
	waitFor(t, "a version", func() bool { return g.Catalog().Current() != nil })
	if _, b := get(t, g.url("/with.html")); !strings.Contains(string(b), `<img data-swarm-src="/hero.jpg">`) {
		t.Fatalf("page with the loader not rewritten: %s", b)
	}
	// Without the loader nothing would give the image its src back: the page must pass through untouched.
	if _, b := get(t, g.url("/without.html")); !strings.Contains(string(b), `<img src="/hero.jpg">`) || strings.Contains(string(b), "swarm") {
		t.Fatalf("page without the loader was changed: %s", b)
	}
	g2 := startGateway(t, Config{Origin: mustURL(o.URL), Inject: true})
	get(t, g2.url("/hero.jpg"))
	waitFor(t, "a version", func() bool { return g2.Catalog().Current() != nil })
	_, b := get(t, g2.url("/without.html"))
	if !strings.Contains(string(b), `<script src="/.swarm/loader.js" async></script></head>`) || !strings.Contains(string(b), `data-swarm-src="/hero.jpg"`) {
		t.Fatalf("--inject page: %s", b)
	}
}
