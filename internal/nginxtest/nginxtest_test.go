package nginxtest

import (
	"strings"
	"testing"
)

// TestServesAStaticSite: gzip for CSS, `expires 1h` on assets, none on HTML, and a log line per request.
func TestServesAStaticSite(t *testing.T) {
	css := strings.Repeat("body { color: red; }\n", 200)
	n := Start(t, Options{
		Files:     map[string][]byte{"/style.css": []byte(css), "/index.html": []byte("<html><body>hi</body></html>")},
		Locations: `location = /account { default_type text/html; return 200 "hello $cookie_user"; }`,
	})
	resp, gz := n.Get(t, "/style.css", "gzip, br")
	if resp.Header.Get("Content-Encoding") != "gzip" || len(gz) >= len(css) || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=3600") {
		t.Fatalf("style.css: %d bytes, header %v", len(gz), resp.Header)
	}
	resp, _ = n.Get(t, "/", "")
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "" || resp.Header.Get("ETag") == "" {
		t.Fatalf("/: %v", resp.Header)
	}
	_, b := Fetch(t, n.URL+"/account", "", "Cookie", "user=alice")
	if string(b) != "hello alice" {
		t.Fatalf("/account: %q", b)
	}
	reqs := n.Settled(t)
	if len(reqs) != 3 || reqs[0].URI != "/style.css" || reqs[0].BodyBytes < int64(len(gz)) ||
		reqs[0].AcceptEncoding != "gzip, br" || reqs[2].Cookie != "user=alice" || reqs[1].Cookie != "" {
		t.Fatalf("log: %+v (style.css: %d bytes)", reqs, len(gz))
	}
	if n.Count(t, "/account") != 1 {
		t.Fatal("count")
	}
}
