package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/swarmgate/swarmgate/gateway/catalog"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/internal/counting"
)

// The origin shield stands between the proxy and the origin for the requests the shared store may answer
// (storeKey: anonymous GETs of the site), as nginx's proxy_cache with proxy_cache_lock and
// proxy_cache_use_stale does:
//   - request collapsing: one origin request per URL in flight; the clients asking meanwhile share its
//     response when it may be shared (public: sharedCacheable) and is small enough to hold;
//   - caching of small public responses per their Cache-Control (the catalogue holds the large ones), and
//     micro-caching of pages without a freshness lifetime for Config.MicroCacheTTL while a crowd lasts;
//   - stale-while-revalidate: in a crowd (or as the response's stale-while-revalidate allows) a stale copy
//     is served at once while one background request revalidates it;
//   - stale-if-error: a stale copy answers when the origin fails, answers 5xx, or is slower than
//     shieldSlowOrigin;
//   - conditional revalidation with the copy's ETag and Last-Modified.
// Nothing with credentials reaches it (storeKey), and a response that sets a cookie, is private or no-store
// is never shared (sharedCacheable).

// Defaults and limits of the shield.
const (
	// DefaultMicroCacheTTL is how long a page without a freshness lifetime is reused in a crowd: the origin
	// then sees about one request per page per second whatever the crowd's rate (the usual micro-cache).
	DefaultMicroCacheTTL = time.Second
	// shieldMaxEntry bounds one held response: pages (rewritten up to maxRewriteHTML) and small assets;
	// larger public assets are the catalogue's.
	shieldMaxEntry = maxRewriteHTML
	// shieldMaxBytes and shieldMaxEntries bound the held responses; past them, expired ones go first, then
	// any.
	shieldMaxBytes   = 64 << 20
	shieldMaxEntries = 10000
	// shieldMaxStale is how long past its freshness a copy may still be served stale (while revalidating
	// in a crowd, or when the origin fails): nginx's inactive=10m default.
	shieldMaxStale = 10 * time.Minute
	// shieldSlowOrigin is how long a client waits for the origin before it gets the stale copy, when there
	// is one (stale-if-error for an origin too slow to answer): a page that takes longer has lost its
	// visitor anyway.
	shieldSlowOrigin = 3 * time.Second
	// shieldFetchTimeout bounds a shared origin request until its response is held (headers and body); a
	// response handed to one client alone is bounded by that client's progress instead.
	shieldFetchTimeout = 30 * time.Second
)

// shieldEntry is one held response.
type shieldEntry struct {
	status   int
	header   http.Header // as the origin sent it; never modified once held
	body     []byte
	received time.Time // when the origin sent it, less its Age
	expires  time.Time // fresh until then
	// noStale: must-revalidate, proxy-revalidate or no-cache forbid serving it stale.
	noStale bool
	// swr is the response's own stale-while-revalidate window.
	swr time.Duration
}

func (e *shieldEntry) size() int { return len(e.body) + 512 }

// flight is one origin request in progress for a URL.
type flight struct {
	done  chan struct{}
	entry *shieldEntry // the response to share, set before done closes; nil when it may not be shared
	err   error        // the origin request failed (and no stale copy stood in)
	// own is the leader's unshared response (large, or not public), handed over before done closes.
	own chan *http.Response
}

// shield is the proxy's transport for the shared store's requests (see the package comment above).
type shield struct {
	s    *Server
	next http.RoundTripper
	ttl  time.Duration // micro-cache TTL; 0: off

	mu      sync.Mutex
	entries map[string]*shieldEntry
	size    int
	flights map[string]*flight
}

func newShield(s *Server, next http.RoundTripper, ttl time.Duration) *shield {
	return &shield{s: s, next: next, ttl: ttl, entries: map[string]*shieldEntry{}, flights: map[string]*flight{}}
}

// shieldBody marks a response the shield answered, so that modifyResponse does not count it as the
// origin's bytes.
type shieldBody struct{ io.ReadCloser }

// RoundTrip answers the shared store's requests from held copies or one shared origin request; others go
// to the origin as they are.
func (sh *shield) RoundTrip(req *http.Request) (*http.Response, error) {
	st, _ := req.Context().Value(storeCtx).(*storeState)
	if st == nil || st.reval != nil || req.Method != http.MethodGet || !answerable(req) || req.Header.Get("Upgrade") != "" {
		return sh.next.RoundTrip(req)
	}
	now := time.Now()
	sh.mu.Lock()
	e := sh.entries[st.key]
	if e != nil && now.Before(e.expires) {
		sh.mu.Unlock()
		return sh.respond(req, e, now), nil
	}
	if e != nil && sh.staleWhileRevalidate(e, now) {
		if _, busy := sh.flights[st.key]; !busy {
			f := sh.startFlight(req, st.key, e)
			sh.mu.Unlock()
			sh.abandon(f)
		} else {
			sh.mu.Unlock()
		}
		return sh.respond(req, e, now), nil
	}
	f, leader := sh.flights[st.key], false
	if f == nil {
		f, leader = sh.startFlight(req, st.key, e), true
	}
	sh.mu.Unlock()

	var slow <-chan time.Time
	if e != nil && sh.staleIfError(e, now) {
		t := time.NewTimer(shieldSlowOrigin)
		defer t.Stop()
		slow = t.C
	}
	var own <-chan *http.Response // only the leader may take the origin's response for itself
	if leader {
		own = f.own
	}
	select {
	case resp := <-own:
		return resp, nil
	case <-f.done:
	case <-slow:
		if leader {
			sh.abandon(f)
		}
		sh.s.log.Info("gateway: origin slow, serving a stale copy", slog.String("path", st.key))
		return sh.respond(req, e, time.Now()), nil
	case <-req.Context().Done():
		if leader {
			sh.abandon(f)
		}
		return nil, fmt.Errorf("gateway: waiting for the origin: %w", req.Context().Err())
	}
	if f.entry != nil {
		return sh.respond(req, f.entry, time.Now()), nil
	}
	if leader {
		select {
		case resp := <-f.own:
			return resp, nil
		default:
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	// The response could not be shared: this client asks for its own.
	return sh.next.RoundTrip(req)
}

// abandon makes sure a response handed to a leader that went away (or to a background revalidation) is
// closed. A shareable one being captured is read to its end first, so that the clients waiting for it, and
// the next ones, get it.
func (sh *shield) abandon(f *flight) {
	sh.s.background(func() {
		var resp *http.Response
		select {
		case resp = <-f.own:
		case <-f.done:
			select {
			case resp = <-f.own:
			default:
				return
			}
		}
		if c, ok := resp.Body.(*captureBody); ok {
			_, _ = io.Copy(io.Discard, io.LimitReader(c, shieldMaxEntry+1))
		}
		resp.Body.Close()
	})
}

// staleWhileRevalidate reports whether a stale copy may be served while it is revalidated: in a crowd or
// its ending (the shield's whole point), or within the response's own stale-while-revalidate.
func (sh *shield) staleWhileRevalidate(e *shieldEntry, now time.Time) bool {
	if e.noStale || e.status != http.StatusOK {
		return false
	}
	if now.Before(e.expires.Add(e.swr)) {
		return true
	}
	return sh.crowd() && now.Before(e.expires.Add(shieldMaxStale))
}

// staleIfError reports whether a stale copy may stand in for an origin that fails or is slow.
func (sh *shield) staleIfError(e *shieldEntry, now time.Time) bool {
	return !e.noStale && now.Before(e.expires.Add(shieldMaxStale))
}

func (sh *shield) crowd() bool { return sh.s.mon.Status().State != monitor.Normal }

// startFlight starts the origin request for key, revalidating the held copy old (nil: none). sh.mu is held.
func (sh *shield) startFlight(req *http.Request, key string, old *shieldEntry) *flight {
	f := &flight{done: make(chan struct{}), own: make(chan *http.Response, 1)}
	sh.flights[key] = f
	ctx, cancel := context.WithCancel(sh.s.runCtx)
	out := req.Clone(ctx)
	if old != nil && old.status == http.StatusOK {
		if et := old.header.Get("ETag"); et != "" {
			out.Header.Set("If-None-Match", et)
		}
		if lm := old.header.Get("Last-Modified"); lm != "" {
			out.Header.Set("If-Modified-Since", lm)
		}
	}
	var once sync.Once
	complete := func(entry *fetched, err error) {
		once.Do(func() {
			sh.mu.Lock()
			delete(sh.flights, key)
			switch {
			case entry != nil && entry.storable:
				sh.put(key, entry.shieldEntry)
			case entry == nil && err == nil:
				sh.drop(key) // the origin answered, with something not to be held: drop the held copy
			}
			sh.mu.Unlock()
			if entry != nil {
				f.entry = entry.shieldEntry
			}
			f.err = err
			close(f.done)
		})
	}
	sh.s.background(func() {
		entry, own, err := sh.fetch(out, cancel, old, complete)
		if own == nil {
			complete(entry, err)
			return
		}
		own.Request = req // the leader's, with its context's values (modifyResponse reads them)
		_, capturing := own.Body.(*captureBody)
		f.own <- own // the leader's from here on
		if !capturing {
			complete(nil, nil) // not to be shared: the others ask for their own
		}
	})
	return f
}

// fetched is a response read by fetch, and whether it may be held beyond this flight.
type fetched struct {
	*shieldEntry
	storable bool
}

// fetch makes the shared origin request. It returns the response to share (the held copy refreshed by a
// 304, or the stale copy when the origin failed), or the response for the leader alone (own), or the
// origin's error. A shareable response of unknown length is streamed to the leader as it comes (the
// origin may be streaming it) and captured on the way: complete is called when it ends, with the response
// to share if it fit. Other own responses may not be shared, and complete is left to the caller.
func (sh *shield) fetch(out *http.Request, cancel context.CancelFunc, old *shieldEntry, complete func(*fetched, error)) (*fetched, *http.Response, error) {
	timer := time.AfterFunc(shieldFetchTimeout, cancel)
	resp, err := sh.next.RoundTrip(out)
	now := time.Now()
	if err != nil || resp.StatusCode >= 500 {
		timer.Stop()
		if old != nil && sh.staleIfError(old, now) {
			if resp != nil {
				resp.Body.Close()
			}
			cancel()
			sh.s.log.Info("gateway: origin failed, serving a stale copy", slog.String("path", out.URL.Path), slog.Any("err", err))
			return &fetched{shieldEntry: old}, nil, nil
		}
		if err != nil {
			cancel()
			return nil, nil, fmt.Errorf("gateway: origin: %w", err)
		}
		return nil, sh.own(resp, nil, cancel), nil
	}
	if resp.StatusCode == http.StatusNotModified && old != nil {
		resp.Body.Close()
		timer.Stop()
		cancel()
		e := *old
		e.header = catalog.UpdateHeader(old.header, resp.Header)
		e.received = now.Add(-ageOf(resp.Header))
		ok, fresh := sh.freshness(&e, now)
		if !ok {
			return nil, nil, nil
		}
		e.expires = fresh
		return &fetched{shieldEntry: &e, storable: true}, nil, nil
	}
	resp.Body = counting.NewReadCloser(resp.Body, &sh.s.counters.origin)
	cacheable, _ := sharedCacheable(resp.Header)
	if !cacheable || len(resp.Header.Values("Content-Encoding")) > 0 || len(resp.Header.Values("Content-Range")) > 0 ||
		resp.ContentLength > shieldMaxEntry || resp.StatusCode < 200 {
		timer.Stop()
		return nil, sh.own(resp, nil, cancel), nil
	}
	if resp.ContentLength < 0 {
		timer.Stop()
		return nil, sh.capture(resp, cancel, now, complete), nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, shieldMaxEntry+1))
	if err != nil {
		resp.Body.Close()
		timer.Stop()
		cancel()
		return nil, nil, fmt.Errorf("gateway: origin: reading %s: %w", out.URL.Path, err)
	}
	if len(body) > shieldMaxEntry {
		timer.Stop()
		return nil, sh.own(resp, body, cancel), nil
	}
	resp.Body.Close()
	timer.Stop()
	cancel()
	e := &shieldEntry{status: resp.StatusCode, header: resp.Header, body: body, received: now.Add(-ageOf(resp.Header))}
	e.header.Del("Content-Length") // set from the body as served (and compressed)
	storable, fresh := sh.freshness(e, now)
	e.expires = fresh
	return &fetched{shieldEntry: e, storable: storable}, nil, nil
}

// capture hands a shareable response of unknown length to the leader, keeping a copy of what it reads: at
// the end of a body that fit in shieldMaxEntry, the flight completes with it; otherwise with nothing.
func (sh *shield) capture(resp *http.Response, cancel context.CancelFunc, received time.Time, complete func(*fetched, error)) *http.Response {
	c := &captureBody{r: resp.Body, body: resp.Body, cancel: cancel}
	c.end = func(ok bool) {
		if !ok {
			complete(nil, nil)
			return
		}
		e := &shieldEntry{status: resp.StatusCode, header: resp.Header.Clone(), body: c.buf.Bytes(), received: received.Add(-ageOf(resp.Header))}
		e.header.Del("Content-Length")
		storable, fresh := sh.freshness(e, time.Now())
		e.expires = fresh
		complete(&fetched{shieldEntry: e, storable: storable}, nil)
	}
	resp.Body = c
	return resp
}

// captureBody is a response body that keeps a copy of what is read, up to shieldMaxEntry.
type captureBody struct {
	r      io.Reader
	body   io.Closer
	cancel context.CancelFunc
	buf    bytes.Buffer
	over   bool
	once   sync.Once
	end    func(ok bool) // called once: at EOF with ok, or on an error, an overflow or an early close
}

func (c *captureBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && !c.over {
		if c.buf.Len()+n > shieldMaxEntry {
			// No copy to share: the flight ends now, and those waiting for it ask for their own, rather
			// than wait for the leader's client to read the rest at its own pace.
			c.over = true
			c.buf = bytes.Buffer{}
			c.once.Do(func() { c.end(false) })
		} else {
			c.buf.Write(p[:n])
		}
	}
	if err != nil {
		ok := err == io.EOF && !c.over
		c.once.Do(func() { c.end(ok) })
	}
	return n, err
}

func (c *captureBody) Close() error {
	err := c.body.Close()
	c.cancel()
	c.once.Do(func() { c.end(false) })
	return err
}

// own hands an unshared response to the leader: its body (after the part already read) ends the request's
// context when closed.
func (sh *shield) own(resp *http.Response, read []byte, cancel context.CancelFunc) *http.Response {
	var r io.Reader = resp.Body
	if len(read) > 0 {
		r = io.MultiReader(bytes.NewReader(read), resp.Body)
	}
	resp.Body = &cancelBody{Reader: r, body: resp.Body, cancel: cancel}
	return resp
}

type cancelBody struct {
	io.Reader
	body   io.Closer
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.body.Close()
	b.cancel()
	return err
}

// freshness says whether a shareable response may be held beyond its flight, and until when it is fresh:
// its Cache-Control lifetime; for a page without one, the micro-cache TTL while a crowd lasts (else it is
// held stale, for revalidation and stale-if-error). Only statuses caches keep by default (RFC 9110 §15.1)
// are held.
func (sh *shield) freshness(e *shieldEntry, now time.Time) (bool, time.Time) {
	ok, lifetime := sharedCacheable(e.header)
	switch e.status {
	case http.StatusOK, http.StatusNonAuthoritativeInfo, http.StatusMovedPermanently, http.StatusPermanentRedirect,
		http.StatusNotFound, http.StatusGone:
	default:
		return false, time.Time{}
	}
	if !ok {
		return false, time.Time{}
	}
	e.noStale, e.swr = false, 0
	for k, v := range directives(e.header) {
		switch k {
		case "no-cache", "must-revalidate", "proxy-revalidate":
			e.noStale = true
		case "stale-while-revalidate":
			e.swr = time.Duration(deltaSeconds(v)) * time.Second
		}
	}
	if lifetime > 0 {
		return true, e.received.Add(lifetime)
	}
	if !e.noStale && sh.ttl > 0 && mediaType(e.header) == "text/html" && sh.crowd() {
		return true, now.Add(sh.ttl)
	}
	return true, now
}

// put holds e for key, making room within the bounds. sh.mu is held.
func (sh *shield) put(key string, e *shieldEntry) {
	sh.drop(key)
	if e.size() > shieldMaxBytes/16 {
		return
	}
	if sh.size+e.size() > shieldMaxBytes || len(sh.entries) >= shieldMaxEntries {
		now := time.Now()
		for k, old := range sh.entries {
			if now.After(old.expires.Add(shieldMaxStale)) {
				sh.drop(k)
			}
		}
		for k := range sh.entries { // still full: any go (map order is random)
			if sh.size+e.size() <= shieldMaxBytes && len(sh.entries) < shieldMaxEntries {
				break
			}
			sh.drop(k)
		}
	}
	sh.entries[key] = e
	sh.size += e.size()
}

func (sh *shield) drop(key string) {
	if old, ok := sh.entries[key]; ok {
		sh.size -= old.size()
		delete(sh.entries, key)
	}
}

// respond is a held response for one client: the origin's header with an Age and X-Swarmgate: shield, the
// body compressed once for the client's Accept-Encoding (pages to rewrite are compressed after rewriting).
func (sh *shield) respond(req *http.Request, e *shieldEntry, now time.Time) *http.Response {
	h := e.header.Clone()
	h.Set("Age", strconv.FormatInt(int64(max(now.Sub(e.received), 0)/time.Second), 10))
	h.Set("X-Swarmgate", "shield")
	body := e.body
	h.Set("Content-Length", strconv.Itoa(len(body)))
	// A page the gateway rewrites is compressed once rewritten (rewriteBody); any other body here.
	// A body the catalogue may learn (MinSwarmSize and more) goes in identity for it to read, and is
	// compressed as it passes (compressWriter) until the catalogue serves it, compressed once.
	rewrites := mediaType(h) == "text/html" && (sh.s.cfg.Site.Inject || sh.s.cat.Current() != nil)
	if !rewrites && e.status == http.StatusOK && int64(len(body)) < sh.s.cfg.Site.MinSwarmSize {
		accept, _ := req.Context().Value(acceptCtx).(string)
		body = sh.s.encodeForClient(h, body, accept)
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", e.status, http.StatusText(e.status)), StatusCode: e.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, Request: req,
		Body: shieldBody{io.NopCloser(bytes.NewReader(body))}, ContentLength: int64(len(body)),
	}
}
