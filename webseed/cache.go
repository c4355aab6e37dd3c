package webseed

import (
	"bytes"
	"container/list"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// entry is one cached origin answer: always a 200 with its whole body.
type entry struct {
	key, site string
	header    http.Header // end-to-end headers, without Content-Length
	body      []byte
	modTime   time.Time // Last-Modified, for conditional requests
	stored    time.Time
	expires   time.Time
	size      int64 // memory charged: body, headers and key
}

func newEntry(key, site string, header http.Header, body []byte, ttl time.Duration, now time.Time) *entry {
	e := &entry{key: key, site: site, header: header, body: body, stored: now, expires: now.Add(ttl)}
	e.modTime, _ = http.ParseTime(header.Get("Last-Modified"))
	e.size = int64(len(body) + len(key) + len(site) + 64)
	for k, vs := range header {
		for _, v := range vs {
			e.size += int64(len(k) + len(v) + 4)
		}
	}
	return e
}

// serve answers r from the entry, with Range and conditional requests handled as for a file.
func (e *entry) serve(w http.ResponseWriter, r *http.Request, now time.Time) {
	hd := w.Header()
	for k, vs := range e.header {
		hd[k] = append([]string(nil), vs...)
	}
	hd.Set("Age", strconv.Itoa(int(now.Sub(e.stored).Seconds())))
	http.ServeContent(w, r, "", e.modTime, bytes.NewReader(e.body))
}

// cache is a least-recently-used cache of origin answers, bounded in bytes.
type cache struct {
	max int64

	mu     sync.Mutex
	lru    *list.List // of *entry, most recently used first
	byKey  map[string]*list.Element
	bytes  int64
	hits   int64
	misses int64
}

func newCache(max int64) *cache {
	return &cache{max: max, lru: list.New(), byKey: make(map[string]*list.Element)}
}

// get returns the fresh entry for key, or nil.
func (c *cache) get(key string, now time.Time) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		return nil
	}
	e := el.Value.(*entry)
	if !now.Before(e.expires) {
		c.removeLocked(el)
		return nil
	}
	c.lru.MoveToFront(el)
	return e
}

// put stores e, replacing an entry with its key and evicting the least recently used beyond the bound.
func (c *cache) put(e *entry) {
	if e.size > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[e.key]; ok {
		c.removeLocked(el)
	}
	c.byKey[e.key] = c.lru.PushFront(e)
	c.bytes += e.size
	for c.bytes > c.max {
		c.removeLocked(c.lru.Back())
	}
}

func (c *cache) removeLocked(el *list.Element) {
	e := c.lru.Remove(el).(*entry)
	delete(c.byKey, e.key)
	c.bytes -= e.size
}

// purgeSite drops every entry of a site.
func (c *cache) purgeSite(site string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if el.Value.(*entry).site == site {
			c.removeLocked(el)
		}
		el = next
	}
}

func (c *cache) hit()  { c.mu.Lock(); c.hits++; c.mu.Unlock() }
func (c *cache) miss() { c.mu.Lock(); c.misses++; c.mu.Unlock() }

func (c *cache) stats() (hits, misses, bytes int64, entries int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses, c.bytes, c.lru.Len()
}

// freshness decides whether a shared cache may keep an origin's answer, and for how long: a 200 without
// Set-Cookie, with an identity body, varying on nothing but Accept-Encoding, and not marked no-store,
// private or no-cache. Its lifetime is s-maxage, max-age or Expires, else def (when positive), at most
// maxCacheTTL.
func freshness(resp *http.Response, now time.Time, def time.Duration) (time.Duration, bool) {
	if resp.StatusCode != http.StatusOK || len(resp.Header.Values("Set-Cookie")) > 0 {
		return 0, false
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return 0, false
	}
	for _, v := range resp.Header.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" && !strings.EqualFold(f, "Accept-Encoding") {
				return 0, false
			}
		}
	}
	ttl, explicit := time.Duration(0), false
	sMaxAge := false
	for _, v := range resp.Header.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "private", "no-cache":
				return 0, false
			case "s-maxage", "max-age":
				secs, err := strconv.ParseInt(strings.Trim(arg, `"`), 10, 64)
				if err != nil || secs < 0 {
					return 0, false // a lifetime we cannot read: do not guess
				}
				if sMaxAge && strings.EqualFold(name, "max-age") {
					continue // s-maxage is the shared caches' own
				}
				ttl, explicit = time.Duration(min(secs, int64(maxCacheTTL/time.Second)))*time.Second, true
				sMaxAge = sMaxAge || strings.EqualFold(name, "s-maxage")
			}
		}
	}
	if !explicit {
		if exp := resp.Header.Get("Expires"); exp != "" {
			t, err := http.ParseTime(exp)
			if err != nil {
				return 0, false // RFC 9111: an invalid Expires means already expired
			}
			base := now
			if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
				base = d
			}
			ttl, explicit = t.Sub(base), true
		}
	}
	if !explicit {
		ttl = def
	}
	ttl = min(ttl, maxCacheTTL)
	return ttl, ttl > 0
}
