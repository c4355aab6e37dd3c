package webseed

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// Assignment is one site version a gateway asked this server to help serve, as Accept takes it: what the
// signed help request says, with the job the gateway served (swarmapi.Job) parsed and checked.
type Assignment struct {
	// Site is the site's host name, as clients send it in Host and DNS publishes it, e.g. "launch.example".
	Site string
	// Version is the site version's name: the torrent's name.
	Version string
	// InfoHash is the torrent's v1 infohash, as the (signed) help request named it.
	InfoHash metainfo.Hash
	// InfoBytes is the torrent's bencoded info dictionary, which the gateway sends along; it must hash to
	// InfoHash, and every piece fetched is then checked against it.
	InfoBytes []byte
	// Origin is where requests for the site that the version does not answer are proxied (pages, small
	// resources, other methods). The site's gateway is the best choice: it also answers /.swarm/ paths and
	// adds the loader to pages. It must not be a name that DNS steers to helpers.
	Origin *url.URL
	// Peers are "host:port" addresses of BitTorrent TCP/uTP listeners that hold the version: the gateway's
	// seeder and other helpers.
	Peers []string
	// Fellows and FellowWebseeds are BitTorrent listeners and BEP 19 webseeds of the site's other helpers,
	// which hold or are fetching the version. The fetch asks them first and turns to Peers and Webseeds only
	// when they fall behind (see seeder.Sources.PreferredPeers): the site's link, full in a crowd, then sends
	// its helpers one copy in all.
	Fellows        []string
	FellowWebseeds []string
	// Webseeds are BEP 19 webseed URLs (ending in "/") that serve the version, such as the gateway's
	// /.swarm/seed/.
	Webseeds []string
	// Trackers are the site swarm's WebSocket trackers: the helper joins the swarm there while it fetches
	// (taking pieces from the site's browsers over WebRTC) and seeds to them once verified.
	Trackers []string
	// Files describes the version's files by URL path (with query, as the manifest lists them). Optional:
	// a file without an entry gets a type from its extension and no SHA-256 check.
	Files map[string]FileMeta
	// First lists URL paths of the version's files in the order the site's pages need them (swarmapi.Job.First):
	// the helper fetches them ahead of the rest. Paths the version does not have are ignored.
	First []string
	// Requester names who asked for the job (a federation member). While the job is held, a job for the
	// same site or version from anyone else is refused (ErrTaken), and only the requester may renew or
	// release it (RenewBy, ReleaseBy).
	Requester string
	// Until is when the job ends unless renewed (RenewBy): the helper stops serving it then and deletes its
	// data. Zero: it lasts until released.
	Until time.Time
	// AllowPrivate lets the origin proxy connect to loopback, private and link-local addresses for this job
	// (the requester's federation entry allows them). Without it, the Helper's own transport refuses them,
	// so an origin name that resolves to an internal address reaches nothing.
	AllowPrivate bool
}

// FileMeta is what the gateway's manifest says of one file.
type FileMeta struct {
	// ContentType is sent as the file's Content-Type.
	ContentType string
	// Header holds the site's other end-to-end fields of the file (Content-Security-Policy,
	// Content-Disposition, X-Content-Type-Options, CORS...), sent with it to steered clients; fields that
	// are the helper's own to set, or that no shared copy may carry (Set-Cookie), are never taken from it.
	Header http.Header
	// SHA256 is the file's SHA-256; when not zero, a fetched file that differs fails the job.
	SHA256 [32]byte
}

// version is a job's torrent, checked and indexed.
type version struct {
	info  metainfo.Info
	size  int64            // bytes in the torrent, padding included
	files map[string]*file // by URL path
	paths map[string]*file // by torrent path below the name, as a webseed request names it
	pads  map[string]int64 // BEP 47 padding files by torrent path, with their lengths
	order []*file          // in torrent order
	first []string         // Assignment.First's files that the version has, by torrent path
}

// file is one of a version's files.
type file struct {
	urlPath     string // "/a/b.js?v=2"
	torrentPath string // "a/b.js?v=2"
	disk        string // where the seeder writes it
	size        int64
	contentType string
	header      http.Header // FileMeta.Header, filtered by replayHeader
	want        [32]byte    // FileMeta.SHA256
	// etag is quoted: from want when the job gives it (the sha256 the file is checked against), else set by
	// checkFiles once the file is verified (and read only once the job is ready).
	etag string
}

// normalizeHost lower-cases a host name and drops a port and a trailing dot.
func normalizeHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimPrefix(strings.TrimSuffix(h, "]"), "[")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// validSite reports whether s (normalized) can be a host name or IP address.
func validSite(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	if net.ParseIP(s) != nil {
		return true
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// checkJob validates a job (normalizing its site) and indexes its version, whose files the seeder writes
// under dir. It is pure apart from reading its arguments.
func checkJob(j *Assignment, dir string) (*version, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("webseed: job %s: %s: %w", j.InfoHash.HexString(), fmt.Sprintf(format, args...), ErrBadJob)
	}
	j.Site = normalizeHost(j.Site)
	if !validSite(j.Site) {
		return nil, bad("site %q is not a host name", j.Site)
	}
	if j.Version == "" {
		return nil, bad("no version")
	}
	if j.Origin == nil || (j.Origin.Scheme != "http" && j.Origin.Scheme != "https") || j.Origin.Host == "" {
		return nil, bad("origin must be an http or https URL")
	}
	origin := *j.Origin // the caller's stays theirs
	j.Origin = &origin
	if len(j.Peers)+len(j.Fellows) > maxPeerAddrs || len(j.Webseeds)+len(j.FellowWebseeds) > maxWebseeds {
		return nil, bad("%d peers and %d webseeds; at most %d and %d", len(j.Peers)+len(j.Fellows),
			len(j.Webseeds)+len(j.FellowWebseeds), maxPeerAddrs, maxWebseeds)
	}
	for _, w := range append(slices.Clip(j.Webseeds), j.FellowWebseeds...) {
		if u, err := url.Parse(w); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, bad("webseed %q is not an http or https URL", w)
		}
	}
	if !j.Until.IsZero() && !time.Now().Before(j.Until) {
		return nil, bad("until %s has passed", j.Until.Format(time.RFC3339))
	}
	if len(j.InfoBytes) == 0 || len(j.InfoBytes) > maxInfoBytes {
		return nil, bad("info dictionary of %d bytes; want 1 to %d", len(j.InfoBytes), maxInfoBytes)
	}
	if metainfo.HashBytes(j.InfoBytes) != j.InfoHash {
		return nil, fmt.Errorf("webseed: job %s: %w", j.InfoHash.HexString(), ErrInfoHashMismatch)
	}
	v := &version{files: make(map[string]*file), paths: make(map[string]*file), pads: make(map[string]int64)}
	if err := bencode.Unmarshal(j.InfoBytes, &v.info); err != nil {
		return nil, bad("info dictionary: %v", err)
	}
	if len(j.First) > maxFiles {
		return nil, bad("%d files to fetch first; at most %d", len(j.First), maxFiles)
	}
	info := &v.info
	if info.Name != j.Version {
		return nil, bad("torrent name %q is not the version %q", info.Name, j.Version)
	}
	if !validComponent(info.Name) {
		return nil, bad("torrent name %q cannot be a directory name", info.Name)
	}
	// The BitTorrent client lays the files out by their UTF-8 names where an info dictionary gives them
	// (name.utf-8, path.utf-8); this helper serves and proves them by the plain ones, checked here. The two
	// must agree, or it would serve and prove other files than those it fetched.
	if info.NameUtf8 != "" && info.NameUtf8 != info.Name {
		return nil, bad("torrent name.utf-8 %q is not its name %q", info.NameUtf8, info.Name)
	}
	if info.PieceLength <= 0 || len(info.Pieces) == 0 || len(info.Pieces)%20 != 0 {
		return nil, bad("piece length %d and %d bytes of piece hashes", info.PieceLength, len(info.Pieces))
	}
	if len(info.Files) == 0 || len(info.Files) > maxFiles {
		return nil, bad("%d files; want a multi-file torrent of at most %d", len(info.Files), maxFiles)
	}
	for _, fi := range info.Files {
		if fi.Length < 0 || fi.Length > maxVersionBytes-v.size || len(fi.Path) == 0 {
			return nil, bad("file %q", fi.Path)
		}
		for _, c := range fi.Path {
			if !validComponent(c) {
				return nil, bad("file path %q has an unsafe component", fi.Path)
			}
		}
		if len(fi.PathUtf8) > 0 && !slices.Equal(fi.PathUtf8, fi.Path) {
			return nil, bad("file path.utf-8 %q is not its path %q", fi.PathUtf8, fi.Path)
		}
		tp := strings.Join(fi.Path, "/")
		if _, dup := v.paths[tp]; dup {
			return nil, bad("file %q listed twice", tp)
		}
		v.size += fi.Length
		if strings.Contains(fi.Attr, "p") {
			// BEP 47 names padding by its length (.pad/N), so files that need as much padding share a name:
			// the same zeros, served once. Two lengths under one name would be ambiguous.
			if n, dup := v.pads[tp]; dup && n != fi.Length {
				return nil, bad("padding file %q listed with lengths %d and %d", tp, n, fi.Length)
			}
			v.pads[tp] = fi.Length
			continue
		}
		if _, dup := v.pads[tp]; dup {
			return nil, bad("file %q listed twice", tp)
		}
		if fi.Path[0] == ".pad" {
			return nil, bad("file %q is in the padding directory but not padding", tp)
		}
		f := &file{
			urlPath: "/" + tp, torrentPath: tp, size: fi.Length,
			disk: filepath.Join(append([]string{dir, info.Name}, fi.Path...)...),
		}
		meta := j.Files[f.urlPath]
		f.contentType, f.want, f.header = meta.ContentType, meta.SHA256, replayHeader(meta.Header)
		if f.want != ([32]byte{}) {
			f.etag = etagOf(f.want)
		}
		if f.contentType == "" {
			p, _, _ := strings.Cut(f.urlPath, "?")
			f.contentType = mime.TypeByExtension(path.Ext(p))
		}
		v.files[f.urlPath] = f
		v.paths[tp] = f
		v.order = append(v.order, f)
	}
	if v.size != info.TotalLength() || (v.size+info.PieceLength-1)/info.PieceLength != int64(info.NumPieces()) {
		return nil, bad("%d bytes do not fill %d pieces of %d", v.size, info.NumPieces(), info.PieceLength)
	}
	for _, p := range j.First {
		if f, ok := v.files[p]; ok {
			v.first = append(v.first, f.torrentPath)
		}
	}
	return v, nil
}

// validComponent reports whether s can be one component of a path on disk.
func validComponent(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00")
}

// notReplayed are the fields a helper never takes from a job's file header: framing and validators are its
// own (it serves ranges of its verified copy), and no shared copy may set a cookie.
var notReplayed = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Content-Range": true, "Content-Encoding": true,
	"Transfer-Encoding": true, "Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Upgrade": true, "Etag": true, "Last-Modified": true, "Age": true, "Date": true,
	"Set-Cookie": true, "Set-Cookie2": true, "Accept-Ranges": true,
}

// maxReplayedFields bounds the fields a helper replays with one file (a response has a few dozen at most).
const maxReplayedFields = 64

// replayHeader is the part of a job file's header that the helper sends with the file.
func replayHeader(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		ck := http.CanonicalHeaderKey(k)
		if notReplayed[ck] || len(out) >= maxReplayedFields {
			continue
		}
		out[ck] = append([]string(nil), v...)
	}
	return out
}
