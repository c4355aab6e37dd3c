package catalog

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestStoredHeaderKeepsEndToEndFieldsOnly(t *testing.T) {
	h := http.Header{
		"Content-Type":                 {"image/svg+xml"},
		"Content-Disposition":          {`attachment; filename="a.svg"`},
		"Content-Security-Policy":      {"sandbox"},
		"X-Content-Type-Options":       {"nosniff"},
		"Access-Control-Allow-Origin":  {"*"},
		"Access-Control-Allow-Headers": {"X-A", "X-B"},
		"Etag":                         {`"v1"`},
		"Link":                         {"</a.css>; rel=preload"},
		"Connection":                   {"keep-alive, X-Hop"},
		"X-Hop":                        {"one connection only"},
		"Keep-Alive":                   {"timeout=5"},
		"Set-Cookie":                   {"session=abc"},
		"Content-Length":               {"123"},
		"Transfer-Encoding":            {"chunked"},
		"Date":                         {"Mon, 01 Jan 2024 00:00:00 GMT"},
		"Age":                          {"30"},
		"Proxy-Authenticate":           {"Basic"},
		"X-Swarmgate":                  {"store"},
	}
	orig := h.Clone()
	got := StoredHeader(h)
	for _, k := range []string{"Content-Type", "Content-Disposition", "Content-Security-Policy", "X-Content-Type-Options",
		"Access-Control-Allow-Origin", "Access-Control-Allow-Headers", "Etag", "Link"} {
		if !slices.Equal(got[k], h[k]) {
			t.Errorf("%s: got %q, want %q", k, got[k], h[k])
		}
	}
	for _, k := range []string{"Connection", "X-Hop", "Keep-Alive", "Set-Cookie", "Content-Length", "Transfer-Encoding",
		"Date", "Age", "Proxy-Authenticate", "X-Swarmgate"} {
		if v, ok := got[k]; ok {
			t.Errorf("%s kept: %q", k, v)
		}
	}
	if len(h) != len(orig) {
		t.Error("StoredHeader modified its argument")
	}
}

func TestUpdateHeaderFrom304(t *testing.T) {
	stored := http.Header{
		"Content-Type":  {"font/woff2"},
		"Cache-Control": {"max-age=60"},
		"Etag":          {`"v1"`},
		"X-Old":         {"kept"},
	}
	notModified := http.Header{
		"Cache-Control":               {"max-age=600"},
		"Access-Control-Allow-Origin": {"*"},
		"Content-Type":                {"text/html"}, // describes the body: only a full response changes it
		"Content-Length":              {"0"},
		"Set-Cookie":                  {"s=1"},
		"Connection":                  {"close"},
	}
	got := UpdateHeader(stored, notModified)
	want := http.Header{
		"Content-Type":                {"font/woff2"},
		"Cache-Control":               {"max-age=600"},
		"Etag":                        {`"v1"`},
		"X-Old":                       {"kept"},
		"Access-Control-Allow-Origin": {"*"},
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
	if stored.Get("Cache-Control") != "max-age=60" {
		t.Error("UpdateHeader modified the stored header")
	}
}

// FuzzStoredHeader: whatever a response carries, the stored header holds no hop-by-hop field, none that
// Connection names, no Set-Cookie and no framing, and updating it from any 304 keeps that true.
func FuzzStoredHeader(f *testing.F) {
	f.Add("Connection: keep-alive, X-Hop\nX-Hop: 1\nContent-Type: text/css\nSet-Cookie: a=b", "Cache-Control: max-age=1\nContent-Type: x")
	f.Add("content-security-policy: sandbox\ncontent-disposition: attachment", "connection: x-a\nx-a: 1")
	f.Add("Transfer-Encoding: chunked\nContent-Length: 3\nAge: 4", "Age: 5\nDate: now")
	f.Fuzz(func(t *testing.T, resp, notModified string) {
		h1, h2 := parseLines(resp), parseLines(notModified)
		for _, got := range []http.Header{StoredHeader(h1), UpdateHeader(StoredHeader(h1), h2)} {
			for k := range got {
				if isOneOf(k, hopByHop) || isOneOf(k, notStored) {
					t.Fatalf("%s kept from %q / %q", k, resp, notModified)
				}
			}
		}
		for _, v := range h1.Values("Connection") {
			for f := range strings.SplitSeq(v, ",") {
				if f = strings.TrimSpace(f); f != "" && len(StoredHeader(h1).Values(f)) > 0 {
					t.Fatalf("%s, named by Connection, kept", f)
				}
			}
		}
	})
}

// parseLines reads "Name: value" lines into a header, as a client would receive them.
func parseLines(s string) http.Header {
	h := http.Header{}
	for l := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) != "" {
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return h
}
