package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/examplesite"
	"github.com/swarmgate/swarmgate/internal/nginxtest"
	"github.com/swarmgate/swarmgate/internal/testutil"
)

func TestNegotiate(t *testing.T) {
	for _, c := range []struct{ accept, want string }{
		{"", ""},
		{"gzip", "gzip"},
		{"x-gzip", "gzip"},
		{"gzip, deflate, br", "br"},
		{"gzip, deflate, br, zstd", "br"},
		{"zstd, gzip", "zstd"},
		{"br;q=0.5, gzip", "gzip"},
		{"br;q=0, gzip;q=0", ""},
		{"*", "br"},
		{"*;q=0.2, gzip", "gzip"},
		{"br;q=0, *", "zstd"},
		{"identity", ""},
		{"gzip;q=nonsense", ""},
		{"deflate", ""},
		{"GZIP ; Q=0.9", "gzip"},
	} {
		if got := negotiate(c.accept); got != c.want {
			t.Errorf("negotiate(%q) = %q, want %q", c.accept, got, c.want)
		}
	}
}

func TestETagPerCoding(t *testing.T) {
	for _, c := range []struct{ etag, enc, want string }{
		{`"abc"`, "br", `"abc-br"`}, {`W/"abc"`, "gzip", `W/"abc-gzip"`}, {`"abc"`, "", `"abc"`}, {"", "br", ""},
	} {
		if got := etagFor(c.etag, c.enc); got != c.want {
			t.Errorf("etagFor(%q, %q) = %q, want %q", c.etag, c.enc, got, c.want)
		}
		if got := identityETags(etagFor(c.etag, c.enc)); got != c.etag {
			t.Errorf("identityETags(%q) = %q", etagFor(c.etag, c.enc), got)
		}
	}
}

// decode undoes a response's content coding.
func decode(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	if enc == "" {
		return b
	}
	zr, ok, err := decoder(enc, bytes.NewReader(b))
	if !ok || err != nil {
		t.Fatalf("decoding %q: %v", enc, err)
	}
	defer zr.Close()
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("decoding %q: %v", enc, err)
	}
	return out
}

// bigScript is a text asset above the swarm's minimum size, so that the gateway stores it.
func bigScript() []byte {
	var b strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&b, "export function handler%d(event) { return event.target.dataset.value%d ?? %d; }\n", i, i%17, i*7)
	}
	return []byte(b.String())
}

// TestTextIsNoBiggerThanNginxSends: with a real nginx (gzip on) as the origin, what swarmgate sends of the
// example site's text is at most 1.1x what nginx alone sends for the same Accept-Encoding, decodes to the
// same bytes, varies on Accept-Encoding with a tag per coding; images go as they are, ranges of the identity
// body stay exact, a stored text asset is compressed once, and a response the gateway only passes through
// (a request with a cookie) keeps the origin's coding.
func TestTextIsNoBiggerThanNginxSends(t *testing.T) {
	site, err := examplesite.Files()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"/index.html": site[examplesite.PageHTML], "/style.css": site[examplesite.StyleCSS],
		"/app.js": site[examplesite.ScriptJS], "/media/photo.png": site[examplesite.ImagePNG], "/big.js": bigScript(),
	}
	ngx := nginxtest.Start(t, nginxtest.Options{Files: files})
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(ngx.URL)}})

	identity := map[string][]byte{"/": files["/index.html"]}
	for p, b := range files {
		identity[p] = b
	}
	check := func(path, accept string) (gwBytes, ngxBytes int, etag string) {
		t.Helper()
		nresp, nb := ngx.Get(t, path, accept)
		gresp, gb := nginxtest.Fetch(t, g.url(path), accept)
		if gresp.StatusCode != 200 {
			t.Fatalf("%s: status %d", path, gresp.StatusCode)
		}
		enc := gresp.Header.Get("Content-Encoding")
		if got := decode(t, enc, gb); !bytes.Equal(got, identity[path]) {
			t.Fatalf("%s (Accept-Encoding %q): decodes to %d bytes, not the file's %d", path, accept, len(got), len(identity[path]))
		}
		if enc != "" && (negotiate(accept) != enc || !strings.Contains(gresp.Header.Get("Vary"), "Accept-Encoding")) {
			t.Errorf("%s: Accept-Encoding %q got %q, Vary %q", path, accept, enc, gresp.Header.Get("Vary"))
		}
		if float64(len(gb)) > 1.1*float64(len(nb)) {
			t.Errorf("%s (Accept-Encoding %q): swarmgate sent %d bytes (%s), nginx %d (%s)", path, accept, len(gb), enc,
				len(nb), nresp.Header.Get("Content-Encoding"))
		}
		t.Logf("%-16s %-24q nginx %6d B %-5s swarmgate %6d B %s", path, accept, len(nb), nresp.Header.Get("Content-Encoding"), len(gb), enc)
		return len(gb), len(nb), gresp.Header.Get("ETag")
	}
	for _, accept := range []string{"gzip, deflate, br", "gzip", "br", "zstd", "gzip, deflate, br, zstd", ""} {
		for _, p := range []string{"/", "/style.css", "/app.js", "/big.js"} {
			check(p, accept)
		}
	}
	// A second round: /big.js now comes from the store, compressed once to disk.
	testutil.Eventually(t, 10*time.Second, "/big.js stored", stored(g, "/big.js"))
	tags := map[string]bool{}
	for _, accept := range []string{"br", "gzip", "zstd", ""} {
		_, _, etag := check("/big.js", accept)
		check("/big.js", accept)
		if tags[etag] {
			t.Errorf("ETag %s shared by two codings", etag)
		}
		tags[etag] = true
	}
	enc, _ := filepath.Glob(filepath.Join(g.cfg.DataDir, "encoded", "*"))
	if len(enc) != 3 {
		t.Errorf("stored text compressed into %d files, want one per coding (3): %v", len(enc), enc)
	}
	// The image is compressed already: never compressed again, and whole.
	resp, b := nginxtest.Fetch(t, g.url("/media/photo.png"), "gzip, br")
	if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(b, files["/media/photo.png"]) {
		t.Errorf("photo.png: Content-Encoding %q, %d bytes", resp.Header.Get("Content-Encoding"), len(b))
	}
	// A range is a range of the identity body, whatever the client accepts.
	for _, p := range []string{"/style.css", "/big.js"} {
		resp, b = nginxtest.Fetch(t, g.url(p), "gzip, br", "Range", "bytes=100-199")
		if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(b, files[p][100:200]) {
			t.Errorf("%s range: status %d, Content-Encoding %q, %q", p, resp.StatusCode, resp.Header.Get("Content-Encoding"), b)
		}
	}
	// A revalidation with the tag of a compressed copy is answered 304.
	resp, _ = nginxtest.Fetch(t, g.url("/style.css"), "gzip")
	if et := resp.Header.Get("ETag"); et != "" {
		resp, _ = nginxtest.Fetch(t, g.url("/style.css"), "gzip", "If-None-Match", et)
		if resp.StatusCode != http.StatusNotModified || resp.Header.Get("ETag") != et {
			t.Errorf("revalidating %s: status %d, ETag %q", et, resp.StatusCode, resp.Header.Get("ETag"))
		}
	} else {
		t.Error("style.css has no ETag")
	}
	// A request with a cookie is only passed through: the origin's own coding reaches the client.
	before := len(ngx.Settled(t))
	resp, b = nginxtest.Fetch(t, g.url("/style.css"), "gzip", "Cookie", "session=1")
	if resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(decode(t, "gzip", b), files["/style.css"]) {
		t.Errorf("with a cookie: Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
	if reqs := ngx.Settled(t); len(reqs) != before+1 || reqs[len(reqs)-1].AcceptEncoding != "gzip" {
		t.Errorf("the origin did not see the client's Accept-Encoding: %+v", reqs[before:])
	}
	if _, err := os.Stat(g.cfg.DataDir); err != nil {
		t.Fatal(err)
	}
}
