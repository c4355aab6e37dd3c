package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/swarmgate/swarmgate/gateway/catalog"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/internal/counting"
	"github.com/swarmgate/swarmgate/swarmapi"
)

// Limits of the proxy.
const (
	// maxRewriteHTML bounds the HTML pages the gateway buffers to rewrite; larger pages pass through as they
	// are (their assets then load over HTTP, which is always correct).
	maxRewriteHTML = 4 << 20
	// relearnInterval is how often one path may be stored again from the origin's responses: in a crowd the
	// same asset passes through many times, and storing it once a while is enough to notice changes.
	relearnInterval = 10 * time.Second
	// maxDeltaSeconds is the largest freshness lifetime or age taken from a response: RFC 9111 §1.2.2 has a
	// cache use 2^31 seconds for anything larger, which also keeps the duration from overflowing.
	maxDeltaSeconds = 1 << 31
	// maxKey bounds the URLs (path and query) the store and the shield key responses by: the catalogue's
	// own limit (catalog.CheckPath), so that made-up long URLs cannot fill the shield's memory.
	maxKey = 2048
)

type ctxKey int

const (
	storeCtx  ctxKey = iota // the request's *storeState
	acceptCtx               // the client's Accept-Encoding (string), which the origin may not see
)

// storeState is what serveProxy tells modifyResponse of a request whose response may teach the store.
type storeState struct {
	key   string        // the request's key in the store: its path and query, as the client sent them
	reval *revalidation // set when the gateway asked with its own validators for a stale stored copy
}

// revalidation is a stale stored copy the gateway asked the origin about, with its body opened beforehand so
// that a 304 can always be answered with it.
type revalidation struct {
	res catalog.Resource
	f   *os.File
}

// newProxy returns the reverse proxy to the origin.
func (s *Server) newProxy(origin *url.URL) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(origin)
			s.setForwarded(pr)
			pr.Out.Host = pr.In.Host
			if st, _ := pr.In.Context().Value(storeCtx).(*storeState); st != nil {
				// The gateway may read this body (to learn it, share it, rewrite it): ask the origin for
				// identity encoding, and compress toward the client itself (compressWriter). Tags it
				// suffixed for a coding go back to the origin's, which knows only those.
				// Explicitly: net/http would otherwise ask for gzip and decode it, and the origin's tags of
				// gzipped bodies are weak ones that its 304s do not repeat.
				pr.Out.Header.Set("Accept-Encoding", "identity")
				if v := pr.Out.Header.Values("If-None-Match"); len(v) > 0 {
					pr.Out.Header.Set("If-None-Match", identityETags(strings.Join(v, ", ")))
				}
			}
			// Otherwise the response passes through in the origin's coding (a page to rewrite is decoded).
		},
		Transport:      newShield(s, timedTransport{http.DefaultTransport, s.mon}, s.cfg.Site.MicroCacheTTL),
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
// Only anonymous GETs for the site's own host names touch the store (see storeKey); everything else is
// proxied as it came.
func (s *Server) serveProxy(w http.ResponseWriter, r *http.Request) {
	w = s.countDemand(w, r)
	w = noSniffWriter{w}
	r = r.WithContext(context.WithValue(r.Context(), acceptCtx, strings.Join(r.Header.Values("Accept-Encoding"), ",")))
	key, ok := s.storeKey(r)
	if !ok {
		s.proxy.ServeHTTP(w, r)
		return
	}
	cw := &compressWriter{ResponseWriter: w, r: r, enc: negotiate(r.Context().Value(acceptCtx).(string)), pool: &s.comp.pool}
	defer func() {
		if err := cw.close(); err != nil {
			s.log.Debug("gateway: response", slog.String("path", r.URL.Path), slog.Any("err", err))
		}
	}()
	w = cw
	st := &storeState{key: key}
	if res, ok := s.cat.Lookup(key); ok && answerable(r) {
		if time.Now().Before(res.Expires) && s.serveStored(w, r, res) {
			return
		}
		etag, lastMod := res.Header.Get("ETag"), res.Header.Get("Last-Modified")
		if etag != "" || lastMod != "" {
			if f, err := s.cat.OpenResource(res); err == nil {
				defer f.Close()
				st.reval = &revalidation{res: res, f: f}
				r = r.Clone(r.Context())
				if etag != "" {
					r.Header.Set("If-None-Match", etag)
				}
				if lastMod != "" {
					r.Header.Set("If-Modified-Since", lastMod)
				}
			}
		}
	}
	s.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), storeCtx, st)))
}

// storeKey returns a request's key in the shared store and the shield, and false when neither may answer
// the request nor learn from its response: anything but a GET without a body, a request for another host
// than the site's (siteHost) or by another address than the one it reached (hostAsReached), one with
// credentials (credentialed), or one with an overlong URL. (Paths the catalogue cannot hold, such as
// directories, are shielded but never learned: see learn.)
func (s *Server) storeKey(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet || r.ContentLength != 0 || len(r.TransferEncoding) > 0 ||
		!siteHost(r.Host, s.cfg.Site.Name) || !hostAsReached(r, s.cfg.Site.Name) ||
		credentialed(r.Header, s.isPublicPath(r.URL.Path)) {
		return "", false
	}
	key := r.URL.RequestURI()
	if len(key) > maxKey {
		return "", false
	}
	return key, true
}

// answerable reports whether the store may answer a request for a resource it holds: not a range or a
// conditional request (the origin answers those), nor one that asks caches to keep nothing.
func answerable(r *http.Request) bool {
	for _, k := range []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since"} {
		if len(r.Header.Values(k)) > 0 {
			return false
		}
	}
	return !hasDirective(r.Header, "no-store")
}

// serveStored serves a stored resource with the origin's headers, counting it as gateway HTTP. It reports
// false, having written nothing, when the stored body cannot be opened.
func (s *Server) serveStored(w http.ResponseWriter, r *http.Request, res catalog.Resource) bool {
	f, err := s.cat.OpenResource(res)
	if err != nil {
		s.log.Warn("gateway: stored copy unreadable", slog.String("path", res.Path), slog.Any("err", err))
		return false
	}
	defer f.Close()
	h := storedReplyHeader(res, time.Now())
	var body io.ReadSeeker = f
	if compressible(h) {
		addVary(h, "Accept-Encoding")
		accept, _ := r.Context().Value(acceptCtx).(string)
		if enc := negotiate(accept); enc != "" && len(r.Header.Values("Range")) == 0 && res.Size >= minCompressSize && res.Size <= maxCompressOnce {
			if ef, err := s.openEncoded(res, enc); err != nil {
				s.log.Warn("gateway: compressing a stored copy", slog.String("path", res.Path), slog.Any("err", err))
			} else if ef != nil {
				defer ef.Close()
				body = ef
				h.Set("Content-Encoding", enc)
				if et := h.Get("ETag"); et != "" {
					h.Set("ETag", etagFor(et, enc))
				}
			}
		}
	}
	maps.Copy(w.Header(), h)
	http.ServeContent(countingResponseWriter{w, &s.counters.gatewayHTTP}, r, "", time.Time{}, body)
	return true
}

// openEncoded opens a stored resource's body in coding enc (compressed once, see encodedFile); nil when the
// coding does not make it smaller.
func (s *Server) openEncoded(res catalog.Resource, enc string) (*os.File, error) {
	name, err := s.encodedFile(res.SHA256, enc, func() (*os.File, error) { return s.cat.OpenResource(res) })
	if err != nil {
		return nil, err
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if st, err := f.Stat(); err != nil || st.Size() >= res.Size {
		f.Close()
		return nil, nil
	}
	return f, nil
}

// storedReplyHeader is the header of a response served from a stored copy: the origin's fields as stored, an
// Age (RFC 9111 §5.1), and X-Swarmgate. A copy stored without a Content-Type gets none (not a sniffed one).
func storedReplyHeader(res catalog.Resource, now time.Time) http.Header {
	h := res.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil
	}
	h.Set("Age", strconv.FormatInt(int64(max(now.Sub(res.Received), 0)/time.Second), 10))
	h.Set("X-Swarmgate", "store")
	return h
}

// noSniffWriter keeps net/http from sniffing a Content-Type for a response that has none: a shared gateway
// must not turn an untyped upload into text/html on the site's origin.
type noSniffWriter struct{ http.ResponseWriter }

func (w noSniffWriter) WriteHeader(code int) {
	if _, ok := w.Header()["Content-Type"]; !ok {
		w.Header()["Content-Type"] = nil
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (to flush, or hijack for an upgrade).
func (w noSniffWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) isPublicPath(p string) bool {
	for _, prefix := range s.cfg.Site.PublicPaths {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// credentialed reports whether a request carries credentials, so that its response may be one user's: a
// non-empty value in any Authorization or Proxy-Authorization field, or in any Cookie field unless the
// operator declared the path public (Config.PublicPaths waives cookies only). Every field is read, not only
// the first of each name.
func credentialed(h http.Header, public bool) bool {
	for _, k := range []string{"Authorization", "Proxy-Authorization", "Cookie"} {
		if k == "Cookie" && public {
			continue
		}
		for _, v := range h.Values(k) {
			if strings.TrimSpace(v) != "" {
				return true
			}
		}
	}
	return false
}

// siteHost reports whether a request's Host (port and all) names the site, so that the shared store may
// answer it or learn from it. With a site name that name alone does (any case, any port, a trailing dot or
// not); a gateway without one is reached by address, and then IP literals and "localhost" do. Anything else
// could be a client poisoning the store with another host's answer.
func siteHost(host, siteName string) bool {
	h, ok := canonicalHost(host)
	if !ok {
		return false
	}
	if siteName != "" {
		site, ok := canonicalHost(siteName)
		return ok && h == site
	}
	if h == "localhost" {
		return true
	}
	_, err := netip.ParseAddr(h)
	return err == nil
}

// hostAsReached reports whether a request's Host is one a browser sends for the address the request reached:
// no port, a standard one (80, 443: a proxy in front may name them) or the port it came in on; and, for a
// gateway without a site name, that address itself (or localhost, on loopback). The store keys a response by
// its path alone while the origin sees the request's Host, and an origin that builds links or redirects from
// it would otherwise answer "Host: site:1337" (or any IP literal) with URLs of the client's choosing, stored
// for every visitor. A request without its listener's address (not from a server) passes.
func hostAsReached(r *http.Request, siteName string) bool {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if local == nil {
		return true
	}
	at, err := netip.ParseAddrPort(local.String())
	if err != nil {
		return true
	}
	if _, port, err := net.SplitHostPort(r.Host); err == nil && port != "80" && port != "443" && port != strconv.Itoa(int(at.Port())) {
		return false
	}
	if siteName != "" {
		return true
	}
	h, _ := canonicalHost(r.Host)
	if h == "localhost" {
		return at.Addr().IsLoopback()
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Unmap() == at.Addr().Unmap()
}

// canonicalHost returns a Host field's name, lower case, without its port, brackets or trailing dot; false
// for an empty name or a port that is not a number.
func canonicalHost(host string) (string, bool) {
	h := host
	if name, port, err := net.SplitHostPort(host); err == nil {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return "", false
		}
		h = name
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	return h, h != "" && !strings.ContainsAny(h, "[]/ ")
}

// sharedCacheable reports whether a response may be kept by a shared cache, and its freshness lifetime. Not
// kept: a response that sets a cookie, is private or no-store, or varies on any request field but
// Accept-Encoding (the gateway asks the origin for identity encoding, so that is the only variant it sees).
// The lifetime is s-maxage, else max-age (the smallest when repeated; an invalid value counts as 0), 0
// without either or with no-cache.
func sharedCacheable(h http.Header) (ok bool, lifetime time.Duration) {
	if len(h.Values("Set-Cookie")) > 0 || len(h.Values("Set-Cookie2")) > 0 {
		return false, 0
	}
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" && !strings.EqualFold(f, "Accept-Encoding") {
				return false, 0
			}
		}
	}
	maxAge, sMaxAge := int64(-1), int64(-1)
	noCache := false
	for k, val := range directives(h) {
		switch k {
		case "private", "no-store":
			return false, 0
		case "no-cache":
			noCache = true
		case "max-age":
			maxAge = minAge(maxAge, deltaSeconds(val))
		case "s-maxage":
			sMaxAge = minAge(sMaxAge, deltaSeconds(val))
		}
	}
	if sMaxAge >= 0 {
		maxAge = sMaxAge
	}
	if noCache || maxAge < 0 {
		return true, 0
	}
	return true, time.Duration(maxAge) * time.Second
}

// directives yields the Cache-Control directives of a header, names lower case, values unquoted.
func directives(h http.Header) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for _, v := range h.Values("Cache-Control") {
			for d := range strings.SplitSeq(v, ",") {
				k, val, _ := strings.Cut(strings.TrimSpace(d), "=")
				if !yield(strings.ToLower(strings.TrimSpace(k)), strings.Trim(strings.TrimSpace(val), `"`)) {
					return
				}
			}
		}
	}
}

// hasDirective reports whether a header's Cache-Control carries the directive name.
func hasDirective(h http.Header, name string) bool {
	for k := range directives(h) {
		if k == name {
			return true
		}
	}
	return false
}

// deltaSeconds parses an RFC 9111 delta-seconds: 0 when it is not one (an invalid lifetime means stale),
// maxDeltaSeconds when larger.
func deltaSeconds(v string) int64 {
	if v == "" || strings.Trim(v, "0123456789") != "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n > maxDeltaSeconds {
		return maxDeltaSeconds
	}
	return n
}

// minAge is the smaller of two lifetimes, -1 standing for none.
func minAge(a, b int64) int64 {
	if a < 0 {
		return b
	}
	return min(a, b)
}

// ageOf is a response's Age (RFC 9111 §5.1): how long it had been held by caches before the gateway got it.
func ageOf(h http.Header) time.Duration {
	return time.Duration(deltaSeconds(h.Get("Age"))) * time.Second
}

func mediaType(h http.Header) string {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt
}

// modifyResponse counts origin bytes, answers the gateway's own revalidations from the store, rewrites
// HTML for the loader, and tees public cacheable bodies into the catalogue.
func (s *Server) modifyResponse(resp *http.Response) error {
	st, _ := resp.Request.Context().Value(storeCtx).(*storeState)
	if st != nil && st.reval != nil && resp.StatusCode == http.StatusNotModified {
		return s.answerRevalidated(resp, st)
	}
	if st != nil && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone) {
		s.cat.Forget(st.key) // the origin no longer has it: stop serving and swarming a stored copy
	}
	switch resp.Body.(type) {
	case shieldBody: // answered by the shield from a held copy
		resp.Body = counting.NewReadCloser(resp.Body, &s.counters.gatewayHTTP)
	case *cancelBody, *captureBody: // the shield's own origin request, counted there
	default:
		resp.Body = counting.NewReadCloser(resp.Body, &s.counters.origin)
	}
	if mediaType(resp.Header) == "text/html" {
		return s.rewritePage(resp)
	}
	if st != nil {
		s.learn(resp, st)
		s.learnFromRange(resp, st)
	}
	return nil
}

// answerRevalidated turns the origin's 304 to the gateway's own revalidation into the stored copy, with the
// stored header updated by the 304's fields (RFC 9111 §4.3.4), for a client that asked unconditionally.
func (s *Server) answerRevalidated(resp *http.Response, st *storeState) error {
	resp.Body.Close()
	now := time.Now()
	res := st.reval.res
	res.Header = catalog.UpdateHeader(res.Header, resp.Header)
	res.Received = now.Add(-ageOf(resp.Header))
	if ok, lifetime := sharedCacheable(res.Header); ok {
		if r, ok := s.cat.Refresh(st.reval.res, res.Header, res.Received, res.Received.Add(lifetime)); ok {
			res = r
		}
	} else {
		s.cat.Forget(st.key) // no longer to be shared; this client still gets the copy it was confirmed
	}
	resp.StatusCode, resp.Status = http.StatusOK, "200 OK"
	resp.Header = storedReplyHeader(res, now)
	resp.Header.Set("Content-Length", strconv.FormatInt(res.Size, 10))
	resp.ContentLength = res.Size
	resp.Body = counting.NewReadCloser(st.reval.f, &s.counters.gatewayHTTP)
	return nil
}

// learn tees a response into the catalogue when a shared cache may keep it: a whole 200 to an anonymous
// GET, in identity encoding, cacheable (sharedCacheable) and at least MinSwarmSize. A stored copy the origin
// now answers with a response that may not be shared is forgotten.
func (s *Server) learn(resp *http.Response, st *storeState) {
	req := resp.Request
	cacheable, lifetime := sharedCacheable(resp.Header)
	if st.reval != nil && resp.StatusCode == http.StatusOK && !cacheable {
		s.cat.Forget(st.key)
	}
	if resp.StatusCode != http.StatusOK || !cacheable || hasDirective(req.Header, "no-store") ||
		len(req.Header.Values("Range")) > 0 || len(resp.Header.Values("Content-Encoding")) > 0 ||
		len(resp.Header.Values("Content-Range")) > 0 {
		return
	}
	if resp.ContentLength >= 0 && resp.ContentLength < s.cfg.Site.MinSwarmSize || catalog.CheckPath(st.key) != nil {
		return // small resources are not swarmed, so not worth storing; some paths cannot name a file
	}
	if !s.startLearning(st.key) {
		return
	}
	received := time.Now().Add(-ageOf(resp.Header))
	meta := catalog.Meta{
		ContentType: resp.Header.Get("Content-Type"),
		Header:      catalog.StoredHeader(resp.Header),
		Received:    received,
		Expires:     received.Add(lifetime),
	}
	pr, pw := io.Pipe()
	resp.Body = &teeBody{ReadCloser: resp.Body, pw: pw}
	size, path := resp.ContentLength, st.key
	// Close waits for the copy (it writes into the catalog's directory) and ends one still being fed: the
	// response then goes on to its client untouched.
	s.background(func() {
		stop := context.AfterFunc(s.runCtx, func() { _ = pr.CloseWithError(context.Cause(s.runCtx)) })
		defer stop()
		changed, err := s.cat.Learn(path, meta, size, pr)
		_ = pr.CloseWithError(err) // unblock the tee if learning stopped early
		if err != nil {
			s.log.Debug("gateway: not stored", slog.String("path", path), slog.Any("err", err))
			return
		}
		if changed {
			s.kickBuild()
		}
	})
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

// rewritePage buffers an HTML page and rewrites it for the loader. A page larger than maxRewriteHTML passes
// through whole and unrewritten, streamed after the part read to find out.
func (s *Server) rewritePage(resp *http.Response) error {
	req := resp.Request
	v := s.cat.Current()
	codings := resp.Header.Values("Content-Encoding")
	if req.Method != http.MethodGet || resp.StatusCode != http.StatusOK || len(codings) > 1 ||
		resp.ContentLength > maxRewriteHTML || (v == nil && !s.cfg.Site.Inject) {
		return nil
	}
	if len(codings) == 1 { // the origin compressed a page the gateway passes through (see newProxy): decode it
		return s.rewriteEncodedPage(resp, codings[0])
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRewriteHTML+1))
	if err != nil {
		resp.Body.Close()
		return fmt.Errorf("gateway: reading page %s: %w", req.URL.Path, err)
	}
	if len(body) > maxRewriteHTML {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		return nil
	}
	resp.Body.Close()
	s.rewriteBody(resp, body)
	return nil
}

// rewriteEncodedPage decodes a page the origin compressed, and rewrites it; a page in a coding the gateway
// cannot decode, or larger than maxDecodedPage once decoded, passes through as it came.
func (s *Server) rewriteEncodedPage(resp *http.Response, coding string) error {
	req := resp.Request
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxRewriteHTML+1))
	if err != nil {
		resp.Body.Close()
		return fmt.Errorf("gateway: reading page %s: %w", req.URL.Path, err)
	}
	passThrough := func() error {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(raw), resp.Body), resp.Body}
		return nil
	}
	if len(raw) > maxRewriteHTML {
		return passThrough()
	}
	zr, ok, err := decoder(coding, bytes.NewReader(raw))
	if !ok || err != nil {
		return passThrough()
	}
	body, err := io.ReadAll(io.LimitReader(zr, maxDecodedPage+1))
	zr.Close()
	if err != nil || len(body) > maxDecodedPage {
		return passThrough()
	}
	resp.Body.Close()
	resp.Header.Del("Content-Encoding")
	resp.Header.Del("ETag") // the tag was the coded representation's
	s.rewriteBody(resp, body)
	return nil
}

// rewriteBody rewrites a page's identity body for the loader and sets it as the response's, compressed for
// the client.
func (s *Server) rewriteBody(resp *http.Response, body []byte) {
	req := resp.Request
	v := s.cat.Current()
	hasLoader := bytes.Contains(body, []byte(swarmapi.PathLoader))
	rw := &htmlRewriter{base: pageURL(req), inSwarm: func(string) bool { return false }}
	if s.cfg.Site.Inject && !hasLoader {
		rw.loaderTag = `<script src="` + swarmapi.PathLoader + `" async></script>`
	}
	if v != nil {
		rw.inSwarm = func(p string) bool { _, ok := v.File(p); return ok }
	}
	if v != nil && (hasLoader || s.cfg.Site.Inject) && s.p2pNow() {
		rw.move = true
		rw.preloadTag = `<link rel="preload" href="` + swarmapi.PathManifest + `" as="fetch" crossorigin>` +
			`<link rel="modulepreload" href="` + swarmapi.Prefix + s.assets.Engine + `">`
		if s.mon.Status().State == monitor.Normal {
			// Outside a crowd the site's link is idle, and a page's first pieces come from it at once.
			rw.headTag = func(refs []headRef) string { return headTag(v, refs) }
		}
	}
	out := rw.rewrite(body)
	if v != nil {
		s.pages.saw(req.URL.Path, rw.named, time.Now())
	}
	if !bytes.Equal(out, body) {
		resp.Header.Del("ETag") // the page is not the origin's bytes any more
	}
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	accept, _ := req.Context().Value(acceptCtx).(string)
	out = s.encodeForClient(resp.Header, out, accept)
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
}

// p2pNow reports whether pages are rewritten for the swarm now (Visitors.P2P): in auto mode, only in the
// crowd and ending states, where the origin's and the site's link's capacity is what the page waits for.
// In normal times a rewritten page would only wait for the loader, the manifest and WebRTC set-up before its
// heavy elements start (measured: the hero image 7x later, a video's first frame 11x later than direct).
func (s *Server) p2pNow() bool {
	switch s.cfg.Visitors.P2P {
	case P2PAlways:
		return true
	case P2POff:
		return false
	}
	return s.mon.Status().State != monitor.Normal
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
