package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Content codings the gateway sends (RFC 9110 §8.4.1), listed in its order of preference when a client
// weighs several alike: brotli and zstd are smaller than gzip on text, brotli the smallest of the three.
const (
	encBrotli = "br"
	encZstd   = "zstd"
	encGzip   = "gzip"
)

var preferredCodings = []string{encBrotli, encZstd, encGzip}

// errUnknownCoding: a content coding the gateway does not make. (Kept here rather than in errors.go while
// the package is being split; it moves there with the rest.)
var errUnknownCoding = errors.New("unknown content coding")

// errNotShareable: the origin's response may not be kept by a shared cache (or is not a whole 200).
var errNotShareable = errors.New("response not shareable")

// compression is the server's compression state: pooled streaming encoders, and bodies compressed once.
type compression struct {
	pool encoders
	mem  encodedMemory
	// making holds the stored assets being compressed to disk (encodedFile), so that each is compressed once.
	mu     sync.Mutex
	making map[encodedKey]chan struct{}
}

// Limits and levels of compression.
const (
	// minCompressSize is the smallest body compressed: below it the coding's header and the extra field
	// cost more than they save (nginx's gzip_min_length is 20; a gzip header and trailer alone are 18).
	minCompressSize = 128
	// maxCompressOnce bounds a body compressed whole (a stored asset, a rewritten page): a site's text assets
	// are far smaller, and brotli at onceLevelBrotli takes about a second per 10 MB on one core here.
	maxCompressOnce = 32 << 20
	// onceLevel*: bodies compressed once and served many times take the slow, small levels; streamLevel*
	// (a response compressed as it passes, once per request) take levels at tens of MB/s per core.
	onceLevelBrotli  = 9
	onceLevelGzip    = gzip.BestCompression
	streamLevelBrot  = 4
	streamLevelGzip  = 5
	onceLevelZstd    = zstd.SpeedBestCompression
	streamLevelZstd  = zstd.SpeedDefault
	zstdWindow       = 4 << 20 // RFC 9659 §3: HTTP clients need not accept windows above 8 MB
	maxEncodedMemory = 32 << 20
	// maxDecodedPage bounds what the gateway decodes of an origin-compressed page to rewrite it, as
	// maxRewriteHTML does for identity ones (a small compressed body could expand without bound).
	maxDecodedPage = maxRewriteHTML
)

// negotiate picks the coding for a response from a request's Accept-Encoding (RFC 9110 §12.5.3): the
// accepted coding of highest weight among those the gateway sends, ties going to the gateway's preference;
// "" (identity) when the client accepts none of them. "*" stands for every coding the field does not name.
func negotiate(accept string) string {
	if accept == "" {
		return ""
	}
	q := map[string]float64{}
	star := -1.0
	for part := range strings.SplitSeq(accept, ",") {
		coding, params, _ := strings.Cut(part, ";")
		c := strings.ToLower(strings.TrimSpace(coding))
		if c == "x-gzip" {
			c = encGzip
		}
		w := weight(params)
		if c == "*" {
			star = w
			continue
		}
		if old, ok := q[c]; !ok || w > old {
			q[c] = w
		}
	}
	best, bestQ := "", 0.0
	for _, c := range preferredCodings {
		w, ok := q[c]
		if !ok {
			w = max(star, 0)
		}
		if w > bestQ {
			best, bestQ = c, w
		}
	}
	return best
}

// compressibleTypes are the media types worth compressing besides text/*: scripts, data and vector images.
// Images, audio, video, fonts in WOFF2 and archives are compressed already.
var compressibleTypes = map[string]bool{
	"application/javascript": true, "application/x-javascript": true, "application/ecmascript": true,
	"application/json": true, "application/ld+json": true, "application/manifest+json": true,
	"application/xml": true, "application/xhtml+xml": true, "application/rss+xml": true, "application/atom+xml": true,
	"image/svg+xml": true, "application/wasm": true, "font/ttf": true, "font/otf": true, "image/x-icon": true,
	"application/vnd.ms-fontobject": true, "image/vnd.microsoft.icon": true,
}

// compressible reports whether a response header describes a body the gateway may compress: a text-like
// media type, no coding already, and no no-transform (RFC 9111 §5.2.2.6). Event streams are left alone:
// they are flushed message by message.
func compressible(h http.Header) bool {
	if len(h.Values("Content-Encoding")) > 0 || len(h.Values("Content-Range")) > 0 || hasDirective(h, "no-transform") {
		return false
	}
	mt := mediaType(h)
	if mt == "text/event-stream" {
		return false
	}
	return strings.HasPrefix(mt, "text/") || compressibleTypes[mt] || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml")
}

// etagFor is the entity tag of a representation in coding enc: the identity one's with the coding's name
// appended inside the quotes (as Apache's mod_deflate does), so that a cache never takes one coding's bytes
// for another's. Weak tags stay weak.
func etagFor(etag, enc string) string {
	if enc == "" || len(etag) < 2 || !strings.HasSuffix(etag, `"`) {
		return etag
	}
	return etag[:len(etag)-1] + "-" + enc + `"`
}

// identityETags turns entity tags the gateway made (etagFor) back into the origin's, in an If-None-Match
// value, so that the origin can answer 304 to a client holding a compressed copy.
func identityETags(v string) string {
	for _, enc := range preferredCodings {
		v = strings.ReplaceAll(v, "-"+enc+`"`, `"`)
	}
	return v
}

// addVary adds field to a header's Vary unless it is there already.
func addVary(h http.Header, field string) {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, field) {
				return
			}
		}
	}
	h.Add("Vary", field)
}

// flushWriteCloser is a streaming encoder.
type flushWriteCloser interface {
	io.WriteCloser
	Flush() error
}

// encoders pools the streaming encoders: a brotli or zstd encoder holds hundreds of KB of tables, too much
// to allocate per response.
type encoders struct {
	gz, br, zs sync.Pool
}

func (p *encoders) get(enc string, w io.Writer) (flushWriteCloser, func()) {
	switch enc {
	case encBrotli:
		bw, _ := p.br.Get().(*brotli.Writer)
		if bw == nil {
			bw = brotli.NewWriterLevel(w, streamLevelBrot)
		} else {
			bw.Reset(w)
		}
		return bw, func() { p.br.Put(bw) }
	case encZstd:
		zw, _ := p.zs.Get().(*zstd.Encoder)
		if zw == nil {
			var err error
			if zw, err = zstd.NewWriter(w, zstd.WithEncoderLevel(streamLevelZstd), zstd.WithEncoderConcurrency(1),
				zstd.WithWindowSize(zstdWindow)); err != nil {
				return nil, nil // the options are constant: never
			}
		} else {
			zw.Reset(w)
		}
		return zw, func() { p.zs.Put(zw) }
	default:
		gw, _ := p.gz.Get().(*gzip.Writer)
		if gw == nil {
			gw, _ = gzip.NewWriterLevel(w, streamLevelGzip)
		} else {
			gw.Reset(w)
		}
		return gw, func() { p.gz.Put(gw) }
	}
}

// encodeOnce compresses a whole body at the slow, small levels, for bodies served many times.
func encodeOnce(enc string, dst io.Writer, src io.Reader) error {
	var zw io.WriteCloser
	switch enc {
	case encBrotli:
		zw = brotli.NewWriterLevel(dst, onceLevelBrotli)
	case encZstd:
		z, err := zstd.NewWriter(dst, zstd.WithEncoderLevel(onceLevelZstd), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(zstdWindow))
		if err != nil {
			return fmt.Errorf("gateway: zstd: %w", err)
		}
		zw = z
	case encGzip:
		z, err := gzip.NewWriterLevel(dst, onceLevelGzip)
		if err != nil {
			return fmt.Errorf("gateway: gzip: %w", err)
		}
		zw = z
	default:
		return fmt.Errorf("gateway: %w: %q", errUnknownCoding, enc)
	}
	if _, err := io.Copy(zw, src); err != nil {
		zw.Close()
		return fmt.Errorf("gateway: compressing (%s): %w", enc, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("gateway: compressing (%s): %w", enc, err)
	}
	return nil
}

// decoder returns a reader of a body in coding enc; false for a coding the gateway cannot decode.
func decoder(enc string, r io.Reader) (io.ReadCloser, bool, error) {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r)
		return zr, true, err
	case encBrotli:
		return io.NopCloser(brotli.NewReader(r)), true, nil
	case encZstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return nil, true, err
		}
		return zr.IOReadCloser(), true, nil
	}
	return nil, false, nil
}

// encodedKey names one body in one coding.
type encodedKey struct {
	sum [32]byte
	enc string
}

// encodedMemory keeps small bodies compressed once (pages as rewritten, the shield's entries), keyed by
// the identity body's hash, up to maxEncodedMemory bytes, oldest out first.
type encodedMemory struct {
	mu    sync.Mutex
	m     map[encodedKey][]byte
	order []encodedKey
	size  int
	// making holds the encodings in progress, so that a crowd compresses a body once, not once per client.
	making map[encodedKey]chan struct{}
}

// get returns body compressed in enc, compressing it once.
func (c *encodedMemory) get(sum [32]byte, enc string, body []byte) ([]byte, error) {
	k := encodedKey{sum, enc}
	for {
		c.mu.Lock()
		if b, ok := c.m[k]; ok {
			c.mu.Unlock()
			return b, nil
		}
		wait, busy := c.making[k]
		if !busy {
			if c.making == nil {
				c.making, c.m = map[encodedKey]chan struct{}{}, map[encodedKey][]byte{}
			}
			wait = make(chan struct{})
			c.making[k] = wait
			c.mu.Unlock()
			break
		}
		c.mu.Unlock()
		<-wait
	}
	var buf bytes.Buffer
	err := encodeOnce(enc, &buf, bytes.NewReader(body))
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.making[k])
	delete(c.making, k)
	if err != nil {
		return nil, err
	}
	b := buf.Bytes()
	for c.size+len(b) > maxEncodedMemory && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		c.size -= len(c.m[old])
		delete(c.m, old)
	}
	if len(b) <= maxEncodedMemory {
		c.m[k] = b
		c.order = append(c.order, k)
		c.size += len(b)
	}
	return b, nil
}

// encodedFile returns the path of a stored body compressed in enc, compressing it once into
// DataDir/encoded (named by the identity body's hash, so it is shared by every path and version holding
// those bytes). open opens the identity body.
func (s *Server) encodedFile(sum [32]byte, enc string, open func() (*os.File, error)) (string, error) {
	dir := filepath.Join(s.cfg.DataDir, "encoded")
	name := filepath.Join(dir, hex.EncodeToString(sum[:])+"."+enc)
	k := encodedKey{sum, enc}
	for {
		if _, err := os.Stat(name); err == nil {
			return name, nil
		}
		s.comp.mu.Lock()
		wait, busy := s.comp.making[k]
		if !busy {
			if s.comp.making == nil {
				s.comp.making = map[encodedKey]chan struct{}{}
			}
			wait = make(chan struct{})
			s.comp.making[k] = wait
			s.comp.mu.Unlock()
			break
		}
		s.comp.mu.Unlock()
		<-wait
	}
	defer func() {
		s.comp.mu.Lock()
		close(s.comp.making[k])
		delete(s.comp.making, k)
		s.comp.mu.Unlock()
	}()
	if _, err := os.Stat(name); err == nil { // made while this call waited for the lock
		return name, nil
	}
	src, err := open()
	if err != nil {
		return "", err
	}
	defer src.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("gateway: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "tmp-*")
	if err != nil {
		return "", fmt.Errorf("gateway: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := encodeOnce(enc, tmp, src); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("gateway: %w", err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return "", fmt.Errorf("gateway: %w", err)
	}
	return name, nil
}

// compressWriter compresses a response as it passes, when the gateway asked the origin for identity
// encoding (it reads those bodies) and the client accepts a coding: once the header is known, a compressible
// (text-like) whole 200 of at least minCompressSize goes out in the negotiated coding with its ETag
// suffixed; everything else passes untouched. Bodies the gateway compressed itself (Content-Encoding set)
// pass as they are.
type compressWriter struct {
	http.ResponseWriter
	r       *http.Request
	enc     string // negotiated from the request
	pool    *encoders
	zw      flushWriteCloser
	release func()
	decided bool
	whole   bool // the origin declared the body's length: it comes at once, flushes would only cost bytes
}

func (w *compressWriter) WriteHeader(code int) {
	if w.decided || code < 200 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.decided = true
	h := w.Header()
	if code == http.StatusNotModified {
		// A client revalidating a compressed copy sent its suffixed tag; the origin confirmed the identity one.
		if et := h.Get("ETag"); et != "" && w.enc != "" && strings.Contains(w.r.Header.Get("If-None-Match"), etagFor(et, w.enc)) {
			h.Set("ETag", etagFor(et, w.enc))
		}
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if code != http.StatusOK || w.r.Method == http.MethodHead || len(w.r.Header.Values("Range")) > 0 || !compressible(h) {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	addVary(h, "Accept-Encoding")
	if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); w.enc == "" || err == nil && n < minCompressSize {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.zw, w.release = w.pool.get(w.enc, w.ResponseWriter)
	w.whole = h.Get("Content-Length") != ""
	h.Del("Content-Length")
	h.Set("Content-Encoding", w.enc)
	if et := h.Get("ETag"); et != "" {
		h.Set("ETag", etagFor(et, w.enc))
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *compressWriter) Write(p []byte) (int, error) {
	if !w.decided {
		w.WriteHeader(http.StatusOK)
	}
	if w.zw == nil {
		return w.ResponseWriter.Write(p)
	}
	return w.zw.Write(p)
}

// Flush sends what the encoder holds (the proxy flushes as the origin writes).
func (w *compressWriter) Flush() {
	if w.whole {
		return
	}
	if w.zw != nil {
		_ = w.zw.Flush()
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// close ends the coded stream; the handler calls it once the response is written.
func (w *compressWriter) close() error {
	if w.zw == nil {
		return nil
	}
	err := w.zw.Close()
	w.release()
	w.zw = nil
	if err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		return fmt.Errorf("gateway: compressing the response: %w", err)
	}
	return nil
}

// Unwrap lets http.ResponseController reach the connection.
func (w *compressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// encodeForClient replaces an in-memory identity body of a response (a rewritten page, a shield entry) with
// its coding for the client (accept is the client's Accept-Encoding), compressed once per distinct body;
// it adds Vary and suffixes the ETag. Bodies that are not compressible, too small, or that compression
// does not shrink stay as they are.
func (s *Server) encodeForClient(h http.Header, body []byte, accept string) []byte {
	if !compressible(h) {
		return body
	}
	addVary(h, "Accept-Encoding")
	enc := negotiate(accept)
	if enc == "" || len(body) < minCompressSize || len(body) > maxCompressOnce {
		return body
	}
	out, err := s.comp.mem.get(sha256.Sum256(body), enc, body)
	if err != nil || len(out) >= len(body) {
		return body
	}
	h.Set("Content-Encoding", enc)
	h.Set("Content-Length", strconv.Itoa(len(out)))
	if et := h.Get("ETag"); et != "" {
		h.Set("ETag", etagFor(et, enc))
	}
	return out
}
