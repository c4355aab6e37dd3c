package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/swarmgate/swarmgate/gateway/catalog"
)

// Limits of the proxy.
const (
	// maxRewriteHTML bounds the HTML pages the gateway buffers to rewrite; larger pages pass through as they
	// are (their assets then load over HTTP, which is always correct).
	maxRewriteHTML = 4 << 20
	// relearnInterval is how often one path may be stored again from the origin's responses: in a crowd the
	// same asset passes through many times, and storing it once a while is enough to notice changes.
	relearnInterval = 10 * time.Second
)

type ctxKey int

const revalidating ctxKey = iota // the request carries the gateway's own validators for a stored resource

// newProxy returns the reverse proxy to the origin.
func (s *Server) newProxy(origin *url.URL) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(origin)
			s.setForwarded(pr)
			pr.Out.Host = pr.In.Host
			// The gateway reads bodies to learn and rewrite them: ask the origin for identity encoding.
			pr.Out.Header.Del("Accept-Encoding")
		},
		Transport:      timedTransport{http.DefaultTransport, s.mon},
		ModifyResponse: s.modifyResponse,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Warn("gateway: origin unreachable", slog.String("path", r.URL.Path), slog.Any("err", err))
			http.Error(w, "swarmgate: the origin did not answer", http.StatusBadGateway)
		},
		FlushInterval: -1, // stream: flush as the origin writes
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// serveProxy answers a request for the site: from the store when it holds a fresh public copy, else from the
// origin (revalidating a stale copy with its validators, so an unchanged asset leaves the origin only once).
func (s *Server) serveProxy(w http.ResponseWriter, r *http.Request) {
	w = s.countDemand(w, r)
	if res, ok := s.cat.Lookup(r.URL.RequestURI()); ok && storable(r, s.isPublicPath(r.URL.Path)) && r.Header.Get("Range") == "" &&
		r.Header.Get("If-None-Match") == "" && r.Header.Get("If-Modified-Since") == "" {
		if time.Now().Before(res.Expires) {
			s.serveStored(w, r, res)
			return
		}
		if res.ETag != "" || res.LastModified != "" {
			r = r.WithContext(context.WithValue(r.Context(), revalidating, res))
			if res.ETag != "" {
				r.Header.Set("If-None-Match", res.ETag)
			}
			if res.LastModified != "" {
				r.Header.Set("If-Modified-Since", res.LastModified)
			}
		}
	}
	s.proxy.ServeHTTP(w, r)
}

// serveStored serves a stored resource, with Range support, counting it as gateway HTTP.
func (s *Server) serveStored(w http.ResponseWriter, r *http.Request, res catalog.Resource) {
	f, err := s.cat.OpenResource(res)
	if err != nil {
		s.proxy.ServeHTTP(w, r)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", res.ContentType)
	if res.ETag != "" {
		h.Set("ETag", res.ETag)
	}
	if res.CacheControl != "" {
		h.Set("Cache-Control", res.CacheControl)
	}
	h.Set("X-Swarmgate", "store")
	http.ServeContent(countingResponseWriter{w, &s.counters.gatewayHTTP}, r, "", time.Time{}, f)
}

func (s *Server) isPublicPath(p string) bool {
	for _, prefix := range s.cfg.PublicPaths {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// storable reports whether a request may be answered from, or teach, the shared store: it carries no
// credentials (or its path was declared public by the operator).
func storable(r *http.Request, public bool) bool {
	if r.Method != http.MethodGet {
		return false
	}
	return public || (r.Header.Get("Cookie") == "" && r.Header.Get("Authorization") == "")
}

// sharedCacheable reports whether a response may be kept by a shared cache, and for how long it is fresh.
func sharedCacheable(h http.Header) (ok bool, fresh time.Duration) {
	if h.Get("Set-Cookie") != "" {
		return false, 0
	}
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			switch strings.ToLower(strings.TrimSpace(f)) {
			case "*", "cookie", "authorization":
				return false, 0
			}
		}
	}
	maxAge, sMaxAge := -1, -1
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(strings.ToLower(strings.TrimSpace(d)), "=")
			switch k {
			case "private", "no-store":
				return false, 0
			case "no-cache":
				maxAge = 0
			case "max-age":
				if n, err := strconv.Atoi(strings.Trim(val, `"`)); err == nil && maxAge != 0 {
					maxAge = n
				}
			case "s-maxage":
				if n, err := strconv.Atoi(strings.Trim(val, `"`)); err == nil {
					sMaxAge = n
				}
			}
		}
	}
	if sMaxAge >= 0 {
		maxAge = sMaxAge
	}
	return true, time.Duration(max(maxAge, 0)) * time.Second
}

func mediaType(h http.Header) string {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt
}

// modifyResponse counts origin bytes, answers the gateway's own revalidations from the store, rewrites
// HTML for the loader, and tees public cacheable bodies into the catalogue.
func (s *Server) modifyResponse(resp *http.Response) error {
	req := resp.Request
	if res, ok := req.Context().Value(revalidating).(catalog.Resource); ok && resp.StatusCode == http.StatusNotModified {
		f, err := s.cat.OpenResource(res)
		if err == nil {
			resp.Body.Close()
			_, fresh := sharedCacheable(resp.Header)
			s.cat.Refresh(res.Path, time.Now().Add(fresh))
			resp.StatusCode, resp.Status = http.StatusOK, "200 OK"
			resp.Body = countingReader{f, &s.counters.gatewayHTTP}
			resp.ContentLength = res.Size
			resp.Header.Set("Content-Length", strconv.FormatInt(res.Size, 10))
			resp.Header.Set("Content-Type", res.ContentType)
			resp.Header.Set("X-Swarmgate", "store")
			return nil
		}
	}
	resp.Body = countingReader{resp.Body, &s.counters.origin}
	public := s.isPublicPath(req.URL.Path)
	if mediaType(resp.Header) == "text/html" {
		return s.rewritePage(resp)
	}
	cacheable, fresh := sharedCacheable(resp.Header)
	if resp.StatusCode != http.StatusOK || !storable(req, public) || (!cacheable && !public) ||
		req.Header.Get("Range") != "" || resp.Header.Get("Content-Encoding") != "" {
		return nil
	}
	if resp.ContentLength >= 0 && resp.ContentLength < s.cfg.MinSwarmSize {
		return nil // small resources are not swarmed, so not worth storing
	}
	path := req.URL.RequestURI()
	if !s.startLearning(path) {
		return nil
	}
	meta := catalog.Meta{
		ContentType:  resp.Header.Get("Content-Type"),
		ETag:         resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"),
		CacheControl: resp.Header.Get("Cache-Control"),
		Expires:      time.Now().Add(fresh),
	}
	pr, pw := io.Pipe()
	resp.Body = &teeBody{ReadCloser: resp.Body, pw: pw}
	size := resp.ContentLength
	go func() {
		changed, err := s.cat.Learn(path, meta, size, pr)
		_ = pr.CloseWithError(err) // unblock the tee if learning stopped early
		if err != nil {
			s.log.Debug("gateway: not stored", slog.String("path", path), slog.Any("err", err))
			return
		}
		if changed {
			s.kickBuild()
		}
	}()
	return nil
}

// teeBody copies what the client reads into a pipe; closing before the end aborts the copy.
type teeBody struct {
	io.ReadCloser
	pw   *io.PipeWriter
	done bool
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if n > 0 && !t.done {
		if _, werr := t.pw.Write(p[:n]); werr != nil {
			t.done = true
		}
	}
	if err == io.EOF && !t.done {
		t.done = true
		_ = t.pw.Close()
	} else if err != nil && !t.done {
		t.done = true
		_ = t.pw.CloseWithError(err)
	}
	return n, err
}

func (t *teeBody) Close() error {
	if !t.done {
		t.done = true
		_ = t.pw.CloseWithError(fmt.Errorf("gateway: client closed before the end of the body"))
	}
	return t.ReadCloser.Close()
}

func (s *Server) startLearning(path string) bool {
	s.learnMu.Lock()
	defer s.learnMu.Unlock()
	if t, ok := s.learning[path]; ok && time.Since(t) < relearnInterval {
		return false
	}
	if len(s.learning) >= catalog.DefaultMaxResources { // forget what is past its interval, so the map stays bounded
		for p, t := range s.learning {
			if time.Since(t) >= relearnInterval {
				delete(s.learning, p)
			}
		}
		if len(s.learning) >= catalog.DefaultMaxResources {
			return false
		}
	}
	s.learning[path] = time.Now()
	return true
}

// rewritePage buffers an HTML page and rewrites it for the loader.
func (s *Server) rewritePage(resp *http.Response) error {
	req := resp.Request
	v := s.cat.Current()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "" || resp.ContentLength > maxRewriteHTML ||
		(v == nil && !s.cfg.Inject) {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRewriteHTML+1))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("gateway: reading page %s: %w", req.URL.Path, err)
	}
	out := body
	if len(body) <= maxRewriteHTML {
		hasLoader := bytes.Contains(body, []byte(PathLoader))
		rw := &htmlRewriter{base: pageURL(req), inSwarm: func(string) bool { return false }}
		if s.cfg.Inject && !hasLoader {
			rw.loaderTag = `<script src="` + PathLoader + `" async></script>`
		}
		if v != nil && (hasLoader || s.cfg.Inject) {
			rw.inSwarm = func(p string) bool { _, ok := v.File(p); return ok }
		}
		out = rw.rewrite(body)
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	if !bytes.Equal(out, body) {
		resp.Header.Del("ETag") // the page is not the origin's bytes any more
	}
	return nil
}

// pageURL is the URL a browser used for the request, to resolve the page's references.
func pageURL(r *http.Request) *url.URL {
	u := *r.URL
	u.Host = r.Host
	u.Scheme = "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		u.Scheme = "https"
	}
	return &u
}
