package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// hostCases are Host fields, a site name, and whether the host is the site's; FuzzSiteHost starts from them.
var hostCases = []struct {
	host, site string
	want       bool
}{
	{"127.0.0.1:8000", "", true},
	{"127.0.0.1", "", true},
	{"[::1]:443", "", true},
	{"[::1]", "", true},
	{"::1", "", true},
	{"localhost:3000", "", true},
	{"LOCALHOST.", "", true},
	{"10.0.0.7:80", "", true},
	{"attacker.example", "", false},
	{"attacker.example:80", "", false},
	{"127.0.0.1.attacker.example", "", false},
	{"localhost.attacker.example", "", false},
	{"", "", false},
	{":80", "", false},
	{"127.0.0.1:http", "", false},
	{"127.0.0.1:", "", false},
	{"site.example", "site.example", true},
	{"Site.Example:8443", "site.example", true},
	{"site.example.", "site.example", true},
	{"site.example", "Site.Example.", true},
	{"127.0.0.1:8000", "site.example", false},
	{"localhost", "site.example", false},
	{"www.site.example", "site.example", false},
	{"site.example.attacker.example", "site.example", false},
	{"attacker.example", "site.example", false},
	{"[site.example]", "site.example", true},
	{"site.example:80:80", "site.example", false},
}

func TestSiteHost(t *testing.T) {
	for _, c := range hostCases {
		if got := siteHost(c.host, c.site); got != c.want {
			t.Errorf("siteHost(%q, %q) = %v, want %v", c.host, c.site, got, c.want)
		}
	}
}

// FuzzSiteHost: with a site name, only a Host that is that name (up to case, port and a trailing dot) is
// the site's; without one, only IP literals and localhost are.
func FuzzSiteHost(f *testing.F) {
	for _, c := range hostCases {
		f.Add(c.host, c.site)
	}
	f.Fuzz(func(t *testing.T, host, site string) {
		if !siteHost(host, site) {
			return
		}
		h, ok := canonicalHost(host)
		if !ok {
			t.Fatalf("%q accepted without a canonical name", host)
		}
		if site != "" {
			if s, _ := canonicalHost(site); s != h {
				t.Fatalf("%q accepted for site %q", host, site)
			}
			return
		}
		if !siteHost(strings.ToUpper(host), site) {
			t.Fatalf("%q accepted but not in upper case", host)
		}
		if strings.ContainsAny(h, "abcdefghijklmnopqrstuvwxyz") && h != "localhost" && !strings.Contains(h, ":") {
			t.Fatalf("%q (%q) accepted without a site name: not an address", host, h)
		}
	})
}

func TestCredentialed(t *testing.T) {
	for _, c := range []struct {
		hdr    http.Header
		public bool
		want   bool
	}{
		{http.Header{}, false, false},
		{http.Header{"Cookie": {""}}, false, false},
		{http.Header{"Cookie": {"", "s=1"}}, false, true},
		{http.Header{"Cookie": {" ", "s=1"}}, false, true},
		{http.Header{"Cookie": {"s=1"}}, true, false},
		{http.Header{"Authorization": {"", "Bearer x"}}, false, true},
		{http.Header{"Authorization": {"Bearer x"}}, true, true},
		{http.Header{"Proxy-Authorization": {"Basic eDp5"}}, true, true},
	} {
		if got := credentialed(c.hdr, c.public); got != c.want {
			t.Errorf("credentialed(%v, public %v) = %v, want %v", c.hdr, c.public, got, c.want)
		}
	}
}

// cacheCases are a response's Cache-Control and Vary, and what a shared cache may do with it;
// FuzzSharedCacheable starts from them.
var cacheCases = []struct {
	cc, vary string
	ok       bool
	lifetime time.Duration
}{
	{"", "", true, 0},
	{"public, max-age=600", "", true, 600 * time.Second},
	{"max-age=600, s-maxage=60", "", true, 60 * time.Second},
	{"no-cache, s-maxage=600", "", true, 0},
	{"s-maxage=600, no-cache", "", true, 0},
	{`no-cache="Set-Cookie", max-age=60`, "", true, 0},
	{"max-age=600, max-age=5", "", true, 5 * time.Second},
	{"max-age=abc", "", true, 0},
	{"max-age=-1", "", true, 0},
	{`max-age="60"`, "", true, 60 * time.Second},
	{"max-age=99999999999999999999999", "", true, maxDeltaSeconds * time.Second},
	{"MAX-AGE=60", "", true, 60 * time.Second},
	{"private", "", false, 0},
	{`private="X-User", max-age=60`, "", false, 0},
	{"no-store", "", false, 0},
	{"public, max-age=60", "Accept-Encoding", true, 60 * time.Second},
	{"public, max-age=60", "accept-encoding, ", true, 60 * time.Second},
	{"public, max-age=60", "Accept-Language", false, 0},
	{"public, max-age=60", "Accept-Encoding, Origin", false, 0},
	{"public, max-age=60", "*", false, 0},
	{"public, max-age=60", "Cookie", false, 0},
}

func TestSharedCacheable(t *testing.T) {
	for _, c := range cacheCases {
		h := http.Header{}
		if c.cc != "" {
			h.Set("Cache-Control", c.cc)
		}
		if c.vary != "" {
			h.Set("Vary", c.vary)
		}
		ok, lifetime := sharedCacheable(h)
		if ok != c.ok || lifetime != c.lifetime {
			t.Errorf("Cache-Control %q, Vary %q: %v %v, want %v %v", c.cc, c.vary, ok, lifetime, c.ok, c.lifetime)
		}
	}
	if ok, _ := sharedCacheable(http.Header{"Set-Cookie": {"a=b"}, "Cache-Control": {"public"}}); ok {
		t.Error("a response that sets a cookie is shared")
	}
}

// FuzzSharedCacheable: whatever the fields say, the lifetime stays within [0, maxDeltaSeconds]; a response
// that is private, no-store or varies on a request field other than Accept-Encoding is never shared, and
// no-cache means no lifetime.
func FuzzSharedCacheable(f *testing.F) {
	for _, c := range cacheCases {
		f.Add(c.cc, c.vary)
	}
	f.Fuzz(func(t *testing.T, cc, vary string) {
		h := http.Header{"Cache-Control": {cc}, "Vary": {vary}}
		ok, lifetime := sharedCacheable(h)
		if lifetime < 0 || lifetime > maxDeltaSeconds*time.Second {
			t.Fatalf("%q: lifetime %v", cc, lifetime)
		}
		for k := range directives(h) {
			switch k {
			case "private", "no-store":
				if ok {
					t.Fatalf("%q shared", cc)
				}
			case "no-cache":
				if lifetime != 0 {
					t.Fatalf("%q: lifetime %v", cc, lifetime)
				}
			}
		}
		for v := range strings.SplitSeq(vary, ",") {
			if v = strings.TrimSpace(v); v != "" && !strings.EqualFold(v, "accept-encoding") && ok {
				t.Fatalf("Vary %q shared", vary)
			}
		}
	})
}
