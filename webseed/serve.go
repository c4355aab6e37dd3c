package webseed

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/swarmgate/swarmgate/swarmapi"
)

// viaToken marks requests a helper forwards (in Via), so that a loop back into a helper is refused.
const viaToken = "swarmgate-helper"

// ServeHTTP serves webseed requests (swarmapi.PathSeed) for any served version (ready, or being fetched: see
// Helper.content), and requests whose Host is a site with a served version: files the version holds, anything
// else through the origin proxy (webseed
// requests for a version this helper does not hold included, so a page's engine that reached the helper by
// the site's name still finds every version the gateway offers).
func (h *Helper) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rest, ok := strings.CutPrefix(r.URL.Path, swarmapi.PathSeed); ok && h.serveSeed(w, r, rest) {
		return
	}
	for _, via := range r.Header.Values("Via") {
		if strings.Contains(via, viaToken) {
			h.fail(w, r, fmt.Errorf("webseed: %s%s: %w", r.Host, r.URL.Path, ErrLoop))
			return
		}
	}
	site := normalizeHost(r.Host)
	jobs := h.servedFor(site)
	if len(jobs) == 0 {
		h.fail(w, r, fmt.Errorf("webseed: site %q: %w", site, ErrNotServed))
		return
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		key := r.URL.RequestURI() // the catalogue's key: escaped path and query
		for _, j := range jobs {
			if f, ok := j.v.files[key]; ok {
				h.serveFile(w, r, j, f)
				return
			}
		}
	}
	h.proxy(w, r, jobs[0])
}

// serveFile serves one file of a served version to a steered client.
func (h *Helper) serveFile(w http.ResponseWriter, r *http.Request, j *job, f *file) {
	fh, etag, err := h.content(r.Context(), j, f)
	if err != nil {
		h.fail(w, r, fmt.Errorf("webseed: %s: %w", f.urlPath, err))
		return
	}
	defer fh.Close()
	hd := w.Header()
	for k, v := range f.header {
		hd[k] = v
	}
	if f.contentType != "" {
		hd.Set("Content-Type", f.contentType)
	}
	if etag != "" {
		hd.Set("ETag", etag)
	}
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", time.Time{}, fh)
	j.served.steered.add(cw.n)
	h.stats.steered.add(cw.n)
}

// CrossOrigin lets pages of any origin read a webseed's responses: the bytes are a site's public assets,
// and a page's engine reaches a helper's webseed by the helper's address, another origin than the page's.
// WebTorrent's webseed requests carry headers that are not CORS-safelisted (Cache-Control, and Range when
// it is not a single range), so browsers send a preflight first; CrossOrigin answers it, for a couple of hours
// at a time, and reports that the request is done.
func CrossOrigin(w http.ResponseWriter, r *http.Request) (done bool) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Content-Range, Content-Length, Accept-Ranges, ETag")
	if r.Method != http.MethodOptions {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, HEAD")
	h.Set("Access-Control-Allow-Headers", "Range, Cache-Control, User-Agent")
	h.Set("Access-Control-Max-Age", "7200") // Chromium's ceiling
	w.WriteHeader(http.StatusNoContent)
	return true
}

// serveSeed is the BEP 19 webseed: byte ranges of a version's files, padding files as zeros. It reports
// false, having written nothing, when no served version has the name.
func (h *Helper) serveSeed(w http.ResponseWriter, r *http.Request, rest string) bool {
	name, tp, _ := strings.Cut(rest, "/")
	j := h.servedVersion(name)
	if j == nil {
		return false
	}
	if CrossOrigin(w, r) {
		return true
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "swarmgate: method not allowed", http.StatusMethodNotAllowed)
		return true
	}
	var content io.ReadSeeker
	if n, ok := j.v.pads[tp]; ok {
		content = io.NewSectionReader(zeros{}, 0, n)
	} else if f, ok := j.v.paths[tp]; ok {
		fh, _, err := h.content(r.Context(), j, f)
		if err != nil {
			h.fail(w, r, fmt.Errorf("webseed: %s/%s: %w", name, tp, err))
			return true
		}
		defer fh.Close()
		content = fh
	} else {
		h.fail(w, r, fmt.Errorf("webseed: %s/%s: %w", name, tp, ErrNotServed))
		return true
	}
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable") // a version never changes
	w.Header().Set("Content-Type", "application/octet-stream")
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", time.Time{}, content)
	j.served.webseed.add(cw.n)
	h.stats.webseed.add(cw.n)
	return true
}

// fail answers a request that cannot be served.
func (h *Helper) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	level := slog.LevelDebug
	if code >= 500 {
		level = slog.LevelWarn
	}
	h.log.Log(r.Context(), level, "webseed: request failed", slog.String("host", r.Host),
		slog.String("path", r.URL.Path), slog.Int("status", code), slog.Any("err", err))
	http.Error(w, "swarmgate: "+http.StatusText(code), code)
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) ReadAt(p []byte, _ int64) (int, error) {
	clear(p)
	return len(p), nil
}
