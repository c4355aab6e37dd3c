package webseed

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/internal/counting"
)

// flight is a cache fill under way; requests for the same key wait for it rather than ask the origin too.
type flight struct {
	done chan struct{}
	e    *entry // the answer, when it could be kept; set before done is closed
}

// proxy answers a request for the site that no version holds: from the cache, else from the origin.
func (h *Helper) proxy(w http.ResponseWriter, r *http.Request, j *job) {
	cw := &countingWriter{ResponseWriter: w}
	defer func() {
		j.served.proxied.add(cw.n)
		h.stats.proxied.add(cw.n)
	}()
	// The origin is reached with the job's address policy (Assignment.AllowPrivate), whichever way the request goes.
	r = r.WithContext(federation.WithPrivate(r.Context(), j.AllowPrivate))
	// Only anonymous reads share answers: with Cookie or Authorization the answer may be someone's own.
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || personal(r.Header) || r.Header.Get("Upgrade") != "" {
		j.rp.ServeHTTP(cw, r)
		return
	}
	key := j.Site + "\x00" + r.URL.RequestURI()
	now := time.Now()
	if e := h.cache.get(key, now); e != nil {
		h.cache.hit()
		e.serve(cw, r, now)
		return
	}
	if r.Method == http.MethodHead || r.Header.Get("Range") != "" {
		j.rp.ServeHTTP(cw, r) // a part of an answer fills no cache
		return
	}
	h.fill(cw, r, j, key)
}

// personal reports whether a request carries credentials in any of its Cookie or Authorization headers. Every
// value counts: Header.Get reads only the first, so an empty "Cookie:" before a real one would pass.
func personal(h http.Header) bool {
	for _, k := range []string{"Authorization", "Cookie"} {
		for _, v := range h.Values(k) {
			if strings.TrimSpace(v) != "" {
				return true
			}
		}
	}
	return false
}

// fill fetches an answer from the origin for a GET, keeps it when it may be shared, and serves it. Requests
// for the same key that arrive meanwhile wait for it.
func (h *Helper) fill(w http.ResponseWriter, r *http.Request, j *job, key string) {
	h.flightMu.Lock()
	if f, ok := h.flights[key]; ok {
		h.flightMu.Unlock()
		select {
		case <-f.done:
		case <-r.Context().Done():
			return
		}
		if f.e != nil {
			h.cache.hit()
			f.e.serve(w, r, time.Now())
			return
		}
		j.rp.ServeHTTP(w, r)
		return
	}
	f := &flight{done: make(chan struct{})}
	h.flights[key] = f
	h.flightMu.Unlock()
	defer func() {
		h.flightMu.Lock()
		delete(h.flights, key)
		h.flightMu.Unlock()
		close(f.done)
	}()

	h.cache.miss()
	resp, err := h.transport.RoundTrip(fillRequest(r, j.Origin))
	if err != nil {
		h.fail(w, r, fmt.Errorf("webseed: %s%s: %w: %w", r.Host, r.URL.Path, ErrOrigin, err))
		return
	}
	defer resp.Body.Close()
	body := counting.NewReadCloser(resp.Body, &h.origin)
	buf, err := io.ReadAll(io.LimitReader(body, h.cfg.MaxCachedObject+1))
	if err != nil {
		h.fail(w, r, fmt.Errorf("webseed: %s%s: %w: %w", r.Host, r.URL.Path, ErrOrigin, err))
		return
	}
	now := time.Now()
	if int64(len(buf)) <= h.cfg.MaxCachedObject {
		if ttl, ok := freshness(resp, now, h.cfg.CacheTTL); ok {
			e := newEntry(key, j.Site, endToEnd(resp.Header), buf, ttl, now)
			h.cache.put(e)
			f.e = e
			e.serve(w, r, now)
			return
		}
	}
	// Not kept: pass the answer on as it came.
	hd := w.Header()
	for k, vs := range endToEnd(resp.Header) {
		hd[k] = vs
	}
	if resp.ContentLength >= 0 {
		hd.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := w.Write(buf); err == nil {
		_, err = io.Copy(w, body)
		if err != nil {
			h.log.Debug("webseed: passing on an origin answer", slog.String("path", r.URL.Path), slog.Any("err", err))
		}
	}
}

// fillRequest is the origin request that fills the cache for r: the whole answer, uncompressed by the
// transport, with no validators of the client's.
func fillRequest(r *http.Request, origin *url.URL) *http.Request {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Body, out.ContentLength = nil, 0
	removeHopHeaders(out.Header)
	for _, k := range []string{"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
		"If-Range", "Accept-Encoding", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
		out.Header.Del(k)
	}
	pr := &httputil.ProxyRequest{In: r, Out: out}
	rewrite(pr, origin)
	return out
}

// rewrite points a proxied request at the origin, keeping the site's Host (an origin may serve several
// sites) and marking it as forwarded by a helper.
func rewrite(pr *httputil.ProxyRequest, origin *url.URL) {
	pr.SetURL(origin)
	pr.Out.Host = pr.In.Host
	pr.SetXForwarded()
	pr.Out.Header.Add("Via", "1.1 "+viaToken)
}

// reverseProxy passes requests the cache does not take to origin as they are (any method, streamed).
func (h *Helper) reverseProxy(origin *url.URL) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { rewrite(pr, origin) },
		Transport: h.transport,
		ModifyResponse: func(resp *http.Response) error {
			resp.Body = counting.NewReadCloser(resp.Body, &h.origin)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.fail(w, r, fmt.Errorf("webseed: %s%s: %w: %w", r.Host, r.URL.Path, ErrOrigin, err))
		},
		ErrorLog: slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
	}
}

// removeHopHeaders removes the hop-by-hop headers (RFC 9110, section 7.6.1), which a proxy does not pass on.
func removeHopHeaders(h http.Header) {
	for _, v := range h.Values("Connection") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		h.Del(k)
	}
}

// endToEnd returns a copy of an origin's response headers to pass on or keep: no hop-by-hop headers and
// no Content-Length (the body may have been uncompressed, and ServeContent sets its own).
func endToEnd(h http.Header) http.Header {
	out := h.Clone()
	removeHopHeaders(out)
	out.Del("Content-Length")
	return out
}
