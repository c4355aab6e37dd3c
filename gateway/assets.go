package gateway

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/swarmgate/swarmgate/gateway/catalog"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/swarmapi"
	"github.com/swarmgate/swarmgate/webseed"
)

// serveAsset serves the browser bundles: the loader with a short cache life (its URL is fixed in the site's
// pages), the content-hashed engine as immutable; gzipped to browsers that accept it (the engine shrinks
// from 225 KB to under 70 KB, which matters most when the site's uplink is full in a crowd).
func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := fs.ReadFile(s.assets.FS, name)
	if err != nil || name == "index.json" {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	sum := sha256.Sum256(b)
	h.Set("ETag", `"`+base64.RawURLEncoding.EncodeToString(sum[:12])+`"`)
	switch name {
	case s.assets.Loader:
		h.Set("Cache-Control", "public, max-age=300")
	case s.assets.ServiceWorker:
		h.Set("Cache-Control", "no-cache")
		h.Set("Service-Worker-Allowed", "/") // it lives under /.swarm/ but serves the whole site
	default:
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	h.Add("Vary", "Accept-Encoding")
	if r.Header.Get("Range") == "" && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		if gz, err := s.gzipAsset(name, b); err == nil {
			h.Set("Content-Encoding", "gzip")
			h.Set("ETag", `"`+base64.RawURLEncoding.EncodeToString(sum[:12])+`-gz"`)
			b = gz
		} else {
			s.log.Warn("gateway: gzip", slog.String("asset", name), slog.Any("err", err))
		}
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

// gzipAsset returns the bundle's gzipped bytes, compressed once per server.
func (s *Server) gzipAsset(name string, b []byte) ([]byte, error) {
	s.gzMu.Lock()
	defer s.gzMu.Unlock()
	if gz, ok := s.gzAssets[name]; ok {
		return gz, nil
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if s.gzAssets == nil {
		s.gzAssets = map[string][]byte{}
	}
	s.gzAssets[name] = buf.Bytes()
	return buf.Bytes(), nil
}

// acceptsGzip reports whether an Accept-Encoding value lets a response be gzipped (RFC 9110, section 12.5.3):
// it names gzip (or x-gzip) with a weight above 0, or names neither and has "*" with a weight above 0. A weight
// that does not parse counts as 0: the response then goes uncompressed, which every client takes.
func acceptsGzip(accept string) bool {
	star := false
	for _, part := range strings.Split(accept, ",") {
		coding, params, _ := strings.Cut(part, ";")
		switch strings.ToLower(strings.TrimSpace(coding)) {
		case "gzip", "x-gzip":
			return weight(params) > 0
		case "*":
			star = weight(params) > 0
		}
	}
	return star
}

// weight is the q parameter among a coding's parameters ("q=0.5"), 1 when it has none, and 0 when it does not
// parse as a number from 0 to 1.
func weight(params string) float64 {
	for _, p := range strings.Split(params, ";") {
		name, value, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || q < 0 || q > 1 {
			return 0
		}
		return q
	}
	return 1
}

// crowdFallbackFactor multiplies Config.Fallback in the manifests served during a crowd.
const crowdFallbackFactor = 4

// manifest describes a version for a browser that reached the gateway at base.
func (s *Server) manifest(v *catalog.Version, base *pageBase) (*swarmapi.Manifest, error) {
	var torrent bytes.Buffer
	if err := v.MetaInfo(nil, nil).Write(&torrent); err != nil {
		return nil, fmt.Errorf("gateway: encoding torrent: %w", err)
	}
	state := s.mon.Status().State
	fallback := s.cfg.Visitors.Fallback
	if state != monitor.Normal {
		// In a crowd the site's link is the scarce resource: its webseed and an HTTP fallback compete for
		// the very bytes the seeder needs to give the swarm pieces it lacks. Engines wait longer for the
		// swarm before they use them (and the engine's give-up, 5 fallbacks, grows with it).
		fallback *= crowdFallbackFactor
	}
	m := &swarmapi.Manifest{
		Version: v.Name, InfoHash: v.InfoHash.HexString(), Torrent: torrent.Bytes(), PieceLength: v.Info.PieceLength,
		Files:      make(map[string]swarmapi.ManifestFile, len(v.Files)),
		Tracker:    base.ws + swarmapi.PathAnnounce,
		ICEServers: s.cfg.Visitors.ICEServers,
		Engine:     swarmapi.Prefix + s.assets.Engine,
		FallbackMs: fallback.Milliseconds(),
		Mode:       state.String(),

		ServiceWorker: !s.cfg.Visitors.NoServiceWorker,
		Uploads:       map[bool]string{true: "off", false: "on"}[s.cfg.Visitors.NoUploads],
		UploadRatio:   s.cfg.Visitors.UploadRatio,
		UploadCeiling: s.cfg.Visitors.UploadCeiling,
		IgnoreGPC:     s.cfg.Visitors.IgnoreGPC,
		SeederPeerID:  s.seeder.PeerID().String(),
	}
	if s.cfg.Visitors.TrackerURL != "" {
		m.Tracker = s.cfg.Visitors.TrackerURL
	}
	m.Webseeds, m.WebseedsNow = s.webseedsFor(v, base, false)
	if m.ICEServers == nil && s.stunPort != 0 {
		m.ICEServers = []swarmapi.ICEServer{{URLs: []string{fmt.Sprintf("stun:%s:%d", base.hostname, s.stunPort)}}}
	}
	if m.ICEServers == nil {
		m.ICEServers = []swarmapi.ICEServer{}
	}
	for _, f := range v.Files {
		m.Files[f.Path] = swarmapi.ManifestFile{Index: f.Index, Size: f.Size, Offset: f.Offset, Type: f.ContentType,
			SHA256: fmt.Sprintf("%x", f.SHA256)}
	}
	return m, nil
}

// webseedsFor is where engines may take v's pieces over HTTP: the site's own webseed, or (for the current
// version) the ready helpers' webseeds in its place, which have the capacity to spare (now): for a new page
// view while the crowd lasts, and for a page still loading (loading: the engine's poll) until the helpers are
// released. The monitor sees a crowd end when the gateway's requests calm down, and that happens while the
// pages that came are still loading, from the helpers: sent back to the site's own webseed then, they would
// load it again, at the pace of the site's link. Helpers' webseeds are plain HTTP at their addresses, which a
// page served over HTTPS may not fetch (mixed content): such pages keep the site's own.
func (s *Server) webseedsFor(v *catalog.Version, base *pageBase, loading bool) (urls []string, now bool) {
	if s.coord != nil && v == s.cat.Current() && !strings.HasPrefix(base.http, "https:") {
		if hw := s.coord.webseeds(loading); len(hw) > 0 {
			return hw, true
		}
	}
	return []string{base.http + swarmapi.PathSeed}, false
}

func (s *Server) serveWebseeds(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("version")
	if name == "" {
		http.Error(w, "swarmgate: want ?version=", http.StatusBadRequest)
		return
	}
	v, err := s.cat.Version(name)
	if err != nil {
		http.Error(w, "swarmgate: no such version", http.StatusNotFound)
		return
	}
	ws := swarmapi.Webseeds{Version: v.Name}
	ws.Webseeds, ws.Now = s.webseedsFor(v, baseOf(r), true)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(ws); err != nil {
		s.log.Debug("gateway: writing webseeds", slog.Any("err", err))
	}
}

// pageBase holds the gateway's URLs as the browser reached it.
type pageBase struct{ http, ws, hostname string }

func baseOf(r *http.Request) *pageBase {
	host := r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		host = h
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		return &pageBase{"https://" + r.Host, "wss://" + r.Host, host}
	}
	return &pageBase{"http://" + r.Host, "ws://" + r.Host, host}
}

func (s *Server) serveManifest(w http.ResponseWriter, r *http.Request) {
	v := s.cat.Current()
	if v == nil {
		// No version yet (a new gateway whose site has not been visited): nothing to swarm, which is no
		// error. A 404 would be one in every visitor's console, for every page the loader is on.
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	m, err := s.manifest(v, baseOf(r))
	if err != nil {
		s.log.Error("gateway: manifest", slog.Any("err", err))
		http.Error(w, "swarmgate: manifest unavailable", http.StatusInternalServerError)
		return
	}
	m.ReportToken = s.reportToken(r, v.Info.TotalLength())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "private, no-cache")
	if err := json.NewEncoder(w).Encode(m); err != nil {
		s.log.Debug("gateway: writing manifest", slog.Any("err", err))
	}
}

// serveSeed is the BEP 19 webseed: byte ranges of a version's files, padding included.
func (s *Server) serveSeed(w http.ResponseWriter, r *http.Request) {
	v, err := s.cat.Version(r.PathValue("version"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if webseed.CrossOrigin(w, r) {
		return
	}
	f, size, err := v.Open(r.PathValue("path"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable") // a version never changes
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", fmt.Sprint(size))
	http.ServeContent(countingResponseWriter{w, &s.counters.gatewayHTTP}, r, "", v.Built, f)
}

// preseed stores the files under root as the site's resources and builds the first version.
func (s *Server) preseed(root string) error {
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil || info.Size() < s.cfg.Site.MinSwarmSize {
			return err
		}
		ct := mime.TypeByExtension(filepath.Ext(p))
		if strings.HasPrefix(ct, "text/html") {
			return nil // pages are rewritten per request, never swarmed
		}
		if _, err := s.cat.AddFile("/"+filepath.ToSlash(rel), ct, p); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("gateway: pre-seeding from %s: %w", root, err)
	}
	if _, err := os.Stat(root); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if _, _, err := s.cat.Build(); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	s.log.Info("gateway: pre-seeded", slog.String("root", root), slog.Int("assets", n))
	return nil
}
