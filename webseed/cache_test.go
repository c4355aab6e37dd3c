package webseed

import (
	"net/http"
	"testing"
	"time"
)

func TestFreshness(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	date := now.Format(http.TimeFormat)
	for _, tc := range []struct {
		name   string
		status int
		header []string
		want   time.Duration // 0: not stored
	}{
		{"no freshness: default", 200, nil, 5 * time.Second},
		{"max-age", 200, []string{"Cache-Control", "public, max-age=30"}, 30 * time.Second},
		{"s-maxage wins", 200, []string{"Cache-Control", "max-age=30, s-maxage=90"}, 90 * time.Second},
		{"s-maxage wins in either order", 200, []string{"Cache-Control", "s-maxage=90, max-age=30"}, 90 * time.Second},
		{"capped", 200, []string{"Cache-Control", "max-age=86400"}, maxCacheTTL},
		{"expires", 200, []string{"Date", date, "Expires", now.Add(time.Minute).Format(http.TimeFormat)}, time.Minute},
		{"expired", 200, []string{"Date", date, "Expires", now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{"bad expires", 200, []string{"Expires", "0"}, 0},
		{"max-age over expires", 200, []string{"Cache-Control", "max-age=7", "Expires", "0"}, 7 * time.Second},
		{"max-age 0", 200, []string{"Cache-Control", "max-age=0"}, 0},
		{"bad max-age", 200, []string{"Cache-Control", "max-age=soon"}, 0},
		{"no-store", 200, []string{"Cache-Control", "no-store"}, 0},
		{"no-cache", 200, []string{"Cache-Control", "max-age=60, no-cache"}, 0},
		{"private", 200, []string{"Cache-Control", "private"}, 0},
		{"set-cookie", 200, []string{"Set-Cookie", "a=b"}, 0},
		{"vary accept-encoding", 200, []string{"Vary", "Accept-Encoding"}, 5 * time.Second},
		{"vary cookie", 200, []string{"Vary", "Accept-Encoding, Cookie"}, 0},
		{"vary star", 200, []string{"Vary", "*"}, 0},
		{"compressed", 200, []string{"Content-Encoding", "gzip"}, 0},
		{"not 200", 404, []string{"Cache-Control", "max-age=60"}, 0},
		{"partial", 206, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
			for i := 0; i+1 < len(tc.header); i += 2 {
				resp.Header.Add(tc.header[i], tc.header[i+1])
			}
			ttl, ok := freshness(resp, now, DefaultCacheTTL)
			if (tc.want > 0) != ok || (ok && ttl != tc.want) {
				t.Fatalf("got %v %v, want %v", ttl, ok, tc.want)
			}
		})
	}
	if _, ok := freshness(&http.Response{StatusCode: 200, Header: http.Header{}}, now, -1); ok {
		t.Fatal("stored without freshness when the default is off")
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	now := time.Now()
	c := newCache(1000)
	put := func(key, site string, n int) *entry {
		e := newEntry(key, site, http.Header{}, make([]byte, n), time.Minute, now)
		c.put(e)
		return e
	}
	a := put("a", "s1", 300)
	put("b", "s1", 300)
	if c.get("a", now) != a { // a is now the most recently used
		t.Fatal("a missing")
	}
	put("c", "s2", 300) // evicts b
	if c.get("b", now) != nil || c.get("a", now) == nil || c.get("c", now) == nil {
		t.Fatal("wrong eviction")
	}
	put("huge", "s1", 2000) // larger than the cache: not kept, evicts nothing
	if c.get("huge", now) != nil || c.get("a", now) == nil {
		t.Fatal("oversize entry")
	}
	if c.get("a", now.Add(time.Hour)) != nil {
		t.Fatal("expired entry served")
	}
	c.purgeSite("s2")
	if _, _, bytes, n := c.stats(); n != 0 || bytes != 0 {
		t.Fatalf("after expiry and purge: %d entries, %d bytes", n, bytes)
	}
}
