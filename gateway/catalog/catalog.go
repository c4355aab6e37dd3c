package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults for Config.
const (
	// DefaultMinSize is the smallest resource put in a torrent. Smaller ones load faster over HTTP than a
	// swarm can be joined, and padding them to a piece boundary would waste more than they weigh.
	DefaultMinSize = 64 << 10
	// DefaultPieceLength is the smallest piece length a version gets, and DefaultMaxPieceLength the largest:
	// each version takes the largest between them that wastes little on padding and leaves enough pieces to
	// trade (see pieceLengthFor). Fewer, larger pieces cost browsers less CPU (a storage write, a hash and a
	// have message each); smaller ones waste less padding per file.
	DefaultPieceLength    = 64 << 10
	DefaultMaxPieceLength = 1 << 20
	// DefaultMaxResourceSize bounds one resource the catalogue stores.
	DefaultMaxResourceSize = 1 << 30
	// DefaultMaxResources bounds the resources one catalogue holds. Every distinct URL (query strings
	// included) is a resource, so without a bound a client requesting /big.jpg?1, ?2, ... would grow the store
	// and every version; a site's heavy assets number in the hundreds or thousands.
	DefaultMaxResources = 10000
	// DefaultMaxVariants bounds the resources that share one URL path and differ by query. A site's
	// cache-busting needs one or two per path (/app.js?v=...), an image endpoint (/thumb?w=...) a few dozen;
	// beyond that the variants are more likely a client making up queries that a static server ignores.
	DefaultMaxVariants = 64
	// DefaultKeepVersions is how many site versions stay seedable after a newer one is built, so that pages
	// loaded before a change still find their assets in a swarm.
	DefaultKeepVersions = 4
)

// Config configures a Catalog.
type Config struct {
	// Dir holds the stored content (blobs/) and the versions laid out for seeding (versions/).
	Dir string
	// MinSize is the smallest resource that goes into a torrent.
	MinSize int64
	// PieceLength is the torrents' piece length, a power of two of at least 16 KiB; with MaxPieceLength
	// above it, the smallest one a version may get. When neither is set they default to DefaultPieceLength
	// and DefaultMaxPieceLength; a PieceLength set alone is used for every version.
	PieceLength    int64
	MaxPieceLength int64
	// MaxResourceSize bounds one stored resource.
	MaxResourceSize int64
	// KeepVersions is how many versions are kept besides the newest.
	KeepVersions int
	// MaxResources bounds the resources held (default DefaultMaxResources); new paths beyond it are not stored.
	// At most half of it may be URLs with a query, so that made-up queries cannot crowd out the site's paths.
	MaxResources int
	// MaxVariants bounds the resources per URL path that differ by query (default DefaultMaxVariants); new
	// variants beyond it are not stored.
	MaxVariants int
	// Logger receives the catalogue's logs; nil discards them.
	Logger *slog.Logger
}

func (c *Config) fillDefaults() {
	if c.MinSize <= 0 {
		c.MinSize = DefaultMinSize
	}
	if c.PieceLength <= 0 {
		c.PieceLength = DefaultPieceLength
		if c.MaxPieceLength <= 0 {
			c.MaxPieceLength = DefaultMaxPieceLength
		}
	}
	c.MaxPieceLength = max(c.MaxPieceLength, c.PieceLength)
	if c.MaxResourceSize <= 0 {
		c.MaxResourceSize = DefaultMaxResourceSize
	}
	if c.KeepVersions <= 0 {
		c.KeepVersions = DefaultKeepVersions
	}
	if c.MaxResources <= 0 {
		c.MaxResources = DefaultMaxResources
	}
	if c.MaxVariants <= 0 {
		c.MaxVariants = DefaultMaxVariants
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Meta is what the catalogue keeps of a response besides its body.
type Meta struct {
	// ContentType is the body's media type, as the versions' files carry it.
	ContentType string
	// Header holds the response's fields to replay with the stored copy (see StoredHeader), the validators
	// (ETag, Last-Modified) among them. It is never modified once stored: updates replace it.
	Header http.Header
	// Received is when the origin sent (or last confirmed) this response; a response received earlier does
	// not replace it.
	Received time.Time
	// Expires is until when the stored copy may be served without asking the origin.
	Expires time.Time
}

// Resource is one stored response body.
type Resource struct {
	Path string // URL path, with query if any
	Meta
	Size   int64
	SHA256 [32]byte
}

// Catalog holds a site's resources and versions. It is safe for concurrent use.
type Catalog struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	resources map[string]Resource // by path
	dirty     bool                // resources changed since the newest version
	versions  []*Version          // oldest first
}

// Open opens (creating) a catalogue in cfg.Dir.
func Open(cfg Config) (*Catalog, error) {
	cfg.fillDefaults()
	if cfg.Dir == "" {
		return nil, fmt.Errorf("catalog: no directory configured")
	}
	for _, pl := range []int64{cfg.PieceLength, cfg.MaxPieceLength} {
		if pl < 16<<10 || pl&(pl-1) != 0 {
			return nil, fmt.Errorf("catalog: piece length %d is not a power of two of at least 16 KiB", pl)
		}
	}
	for _, d := range []string{"blobs", "versions", "tmp"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("catalog: %w", err)
		}
	}
	return &Catalog{cfg: cfg, log: cfg.Logger, resources: make(map[string]Resource)}, nil
}

func (c *Catalog) blobPath(sum [32]byte) string {
	h := hex.EncodeToString(sum[:])
	return filepath.Join(c.cfg.Dir, "blobs", h[:2], h)
}

// Limits on the URL paths the catalogue stores. Every stored path becomes a file in each version's layout,
// on the gateway's disk and on helpers'; a path that cannot be one would fail every build.
const (
	// maxComponent is the longest path component, in bytes: NAME_MAX of the usual file systems (ext4, XFS,
	// Btrfs, APFS).
	maxComponent = 255
	// maxPath is the longest path with its query, in bytes: the layout's directories (DataDir/catalog/
	// versions/<name>/<name>/) must still fit in PATH_MAX (4096 on Linux) before it.
	maxPath = 2048
)

// CheckPath reports whether a URL path (with its query, if any) can be stored: whether it can name a file
// in a torrent and in a version's layout on disk.
func CheckPath(p string) error {
	_, err := pathComponents(p)
	return err
}

// pathComponents splits a URL path into torrent path components, refusing what cannot be one: relative or
// directory paths, empty, "." and ".." components, a top-level ".pad" (the BEP 47 padding directory), and
// anything but printable ASCII (a request's escaped path and query are ASCII; a byte outside it, or a
// backslash, would name a different file on some systems). Components are at most maxComponent bytes and
// the whole at most maxPath.
func pathComponents(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || len(p) > maxPath {
		return nil, fmt.Errorf("%w: %q", ErrBadPath, p)
	}
	for i := 0; i < len(p); i++ {
		if b := p[i]; b <= ' ' || b >= 0x7f || b == '\\' {
			return nil, fmt.Errorf("%w: %q", ErrBadPath, p)
		}
	}
	comps := strings.Split(p[1:], "/")
	for _, s := range comps {
		if s == "" || s == "." || s == ".." || len(s) > maxComponent {
			return nil, fmt.Errorf("%w: %q", ErrBadPath, p)
		}
	}
	if comps[0] == padDir {
		return nil, fmt.Errorf("%w: %q", ErrBadPath, p)
	}
	return comps, nil
}

// Learn stores body as the resource at path, reading it to the end. size is the declared length (-1 when
// unknown); a body that ends early is not stored. It reports whether the site's content changed.
func (c *Catalog) Learn(path string, meta Meta, size int64, body io.Reader) (bool, error) {
	if _, err := pathComponents(path); err != nil {
		return false, err
	}
	if size > c.cfg.MaxResourceSize {
		return false, ErrTooLarge
	}
	tmp, err := os.CreateTemp(filepath.Join(c.cfg.Dir, "tmp"), "learn-*")
	if err != nil {
		return false, fmt.Errorf("catalog: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(body, c.cfg.MaxResourceSize+1))
	if err != nil {
		return false, fmt.Errorf("catalog: reading %s: %w", path, err)
	}
	if n > c.cfg.MaxResourceSize {
		return false, ErrTooLarge
	}
	if size >= 0 && n != size {
		return false, fmt.Errorf("%w: %s: %d of %d bytes", ErrTruncated, path, n, size)
	}
	r := Resource{Path: path, Meta: meta, Size: n}
	copy(r.SHA256[:], h.Sum(nil))
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("catalog: %w", err)
	}
	dst := c.blobPath(r.SHA256)
	if _, err := os.Stat(dst); err != nil {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return false, fmt.Errorf("catalog: %w", err)
		}
		if err := os.Rename(tmp.Name(), dst); err != nil {
			return false, fmt.Errorf("catalog: %w", err)
		}
	}
	return c.put(r), nil
}

// AddFile adds a file on disk as the resource at path (pre-seeding from a site's document root).
func (c *Catalog) AddFile(path, contentType, file string) (bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return false, fmt.Errorf("catalog: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("catalog: %w", err)
	}
	return c.Learn(path, Meta{ContentType: contentType, Header: http.Header{"Content-Type": {contentType}}}, st.Size(), f)
}

func (c *Catalog) put(r Resource) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, had := c.resources[r.Path]
	if had && old.Received.After(r.Received) {
		return false // a newer response was stored while this one was read
	}
	if !had {
		if reason := c.fullFor(r.Path); reason != "" {
			c.log.Warn("catalog: full, not storing", slog.String("path", r.Path), slog.String("reason", reason))
			return false
		}
	}
	c.resources[r.Path] = r
	if had && old.SHA256 == r.SHA256 && old.ContentType == r.ContentType {
		return false
	}
	if r.Size >= c.cfg.MinSize || had && old.Size >= c.cfg.MinSize {
		c.dirty = true
		c.log.Info("catalog: learned", slog.String("path", r.Path), slog.Int64("size", r.Size))
		return true
	}
	return false
}

// fullFor says why a new path cannot be stored ("" when it can): the catalogue is full, or holds as many
// URLs with a query as it may, or as many variants of the path as it may. c.mu is held.
func (c *Catalog) fullFor(p string) string {
	if len(c.resources) >= c.cfg.MaxResources {
		return "resources"
	}
	base, _, hasQuery := strings.Cut(p, "?")
	if !hasQuery {
		return ""
	}
	queries, variants := 0, 0
	for q := range c.resources {
		b, _, ok := strings.Cut(q, "?")
		if ok {
			queries++
		}
		if b == base {
			variants++
		}
	}
	switch {
	case queries >= c.cfg.MaxResources/2:
		return "queries"
	case variants >= c.cfg.MaxVariants:
		return "variants"
	}
	return ""
}

// Lookup returns the stored resource at path.
func (c *Catalog) Lookup(path string) (Resource, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.resources[path]
	return r, ok
}

// Refresh records that the origin confirmed a stored resource unchanged (a 304): its header becomes header
// (see UpdateHeader), received and expires are renewed. It returns the refreshed resource, and false when
// the catalogue no longer holds r as it was (it was replaced or forgotten meanwhile).
func (c *Catalog) Refresh(r Resource, header http.Header, received, expires time.Time) (Resource, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.resources[r.Path]
	if !ok || cur.SHA256 != r.SHA256 || cur.Received.After(received) {
		return Resource{}, false
	}
	cur.Header, cur.Received, cur.Expires = header, received, expires
	c.resources[r.Path] = cur
	return cur, true
}

// Forget drops the resource at path, as when the origin no longer serves it publicly. The next version
// built leaves it out.
func (c *Catalog) Forget(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.resources[path]
	if !ok {
		return
	}
	delete(c.resources, path)
	if r.Size >= c.cfg.MinSize {
		c.dirty = true
	}
	c.log.Info("catalog: forgot", slog.String("path", path))
}

// OpenResource opens a stored resource's body.
func (c *Catalog) OpenResource(r Resource) (*os.File, error) {
	f, err := os.Open(c.blobPath(r.SHA256))
	if err != nil {
		return nil, fmt.Errorf("catalog: %s: %w", r.Path, err)
	}
	return f, nil
}

// Dirty reports whether swarmable resources changed since the newest version was built.
func (c *Catalog) Dirty() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dirty
}

// Current returns the newest version, or nil before the first is built.
func (c *Catalog) Current() *Version {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.versions) == 0 {
		return nil
	}
	return c.versions[len(c.versions)-1]
}

// Versions returns the versions kept, oldest first.
func (c *Catalog) Versions() []*Version {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.versions)
}

// Version returns the kept version with the given name.
func (c *Catalog) Version(name string) (*Version, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.versions {
		if v.Name == name {
			return v, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrNoVersion, name)
}

// swarmable returns the resources that go into a version, sorted by path.
func (c *Catalog) swarmable() []Resource {
	var out []Resource
	for _, r := range c.resources {
		if r.Size >= c.cfg.MinSize {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Resource) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// forgetIf forgets r if the catalogue still holds it as it was.
func (c *Catalog) forgetIf(r Resource) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.resources[r.Path]; ok && cur.SHA256 == r.SHA256 {
		delete(c.resources, r.Path)
	}
}
