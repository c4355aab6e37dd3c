package catalog

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// File is one resource in a version.
type File struct {
	Path        string // URL path
	ContentType string
	// Header is the stored response's end-to-end header (see StoredHeader), for helpers that serve the file
	// to steered clients: they must send its Content-Security-Policy, Content-Disposition and the rest too.
	Header http.Header
	Size   int64
	Offset int64 // where the file starts in the torrent's byte stream: a multiple of the piece length
	Index  int   // index in the torrent's file list, padding files included
	SHA256 [32]byte
}

// Version is one torrent of a site's swarmable resources.
type Version struct {
	Name     string // the torrent's name: a digest of its content list
	InfoHash metainfo.Hash
	Info     metainfo.Info
	// InfoBytes is the bencoded info dictionary: what the infohash is the SHA-1 of.
	InfoBytes []byte
	Files     []File
	// Dir is the directory a BitTorrent client seeds from: it holds Name/ with the files (and padding files)
	// at their torrent paths.
	Dir   string
	Built time.Time
}

// padDir is the BEP 47 directory of padding files.
const padDir = ".pad"

// MetaInfo returns a torrent with the version's info, the given trackers and webseeds (BEP 19 url-list).
func (v *Version) MetaInfo(trackers, webseeds []string) *metainfo.MetaInfo {
	mi := &metainfo.MetaInfo{InfoBytes: v.InfoBytes, UrlList: webseeds, CreatedBy: "swarmgate"}
	if len(trackers) > 0 {
		mi.Announce = trackers[0]
		mi.AnnounceList = metainfo.AnnounceList{trackers}
	}
	return mi
}

// File returns the file at a URL path.
func (v *Version) File(path string) (File, bool) {
	for _, f := range v.Files {
		if f.Path == path {
			return f, true
		}
	}
	return File{}, false
}

// PieceSpan returns the file that piece i lies in, where in that file the piece starts and how many of the
// piece's bytes are the file's: the rest of the piece, if any, is BEP 47 padding (every file starts on a piece
// boundary). ok is false for an index outside the torrent.
func (v *Version) PieceSpan(i int) (f File, off, n int64, ok bool) {
	at := int64(i) * v.Info.PieceLength
	if i < 0 || i >= v.Info.NumPieces() {
		return File{}, 0, 0, false
	}
	for _, f := range v.Files {
		if at >= f.Offset && at < f.Offset+f.Size {
			return f, at - f.Offset, min(v.Info.PieceLength, f.Offset+f.Size-at), true
		}
	}
	return File{}, 0, 0, false
}

// Open opens a file of the version by its path inside the torrent (below the torrent's name, '/'-separated,
// as a BEP 19 webseed request names it). Padding files read as zeros.
func (v *Version) Open(torrentPath string) (io.ReadSeekCloser, int64, error) {
	if rest, ok := strings.CutPrefix(torrentPath, padDir+"/"); ok {
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || n <= 0 || n >= v.Info.PieceLength {
			return nil, 0, fmt.Errorf("%w: %q", ErrNotInVersion, torrentPath)
		}
		return nopCloser{io.NewSectionReader(zeros{}, 0, n)}, n, nil
	}
	f, ok := v.File("/" + torrentPath)
	if !ok {
		return nil, 0, fmt.Errorf("%w: %q", ErrNotInVersion, torrentPath)
	}
	comps, _ := pathComponents(f.Path)
	fh, err := os.Open(filepath.Join(append([]string{v.Dir, v.Name}, comps...)...))
	if err != nil {
		return nil, 0, fmt.Errorf("catalog: %w", err)
	}
	return fh, f.Size, nil
}

type zeros struct{}

func (zeros) ReadAt(p []byte, _ int64) (int, error) {
	clear(p)
	return len(p), nil
}

type nopCloser struct{ io.ReadSeeker }

func (nopCloser) Close() error { return nil }

// Build makes a new version from the swarmable resources when they changed since the newest version. It
// returns the current version (nil when nothing is swarmable yet) and the versions dropped to keep
// Config.KeepVersions.
func (c *Catalog) Build() (*Version, []*Version, error) {
	c.mu.Lock()
	if !c.dirty {
		defer c.mu.Unlock()
		if len(c.versions) == 0 {
			return nil, nil, nil
		}
		return c.versions[len(c.versions)-1], nil, nil
	}
	c.dirty = false
	res := c.swarmable()
	c.mu.Unlock()
	if len(res) == 0 {
		return nil, nil, nil
	}

	var (
		name string
		v    *Version
	)
	for {
		name = contentName(res)
		if old, err := c.Version(name); err == nil { // content went back to what an earlier version held
			c.mu.Lock()
			c.versions = append(deleteVersion(c.versions, old), old)
			c.mu.Unlock()
			return old, nil, nil
		}
		start := time.Now()
		var bad int
		var err error
		v, bad, err = c.layOut(name, res)
		if err == nil {
			c.log.Info("catalog: built version", slog.String("version", v.Name), slog.String("infohash", v.InfoHash.HexString()),
				slog.Int("files", len(v.Files)), slog.Duration("took", time.Since(start)))
			break
		}
		if bad < 0 { // not one resource's fault: try again on the next build
			c.mu.Lock()
			c.dirty = true
			c.mu.Unlock()
			return nil, nil, err
		}
		// One resource cannot be laid out (its path clashes with another's, its blob is gone): forget it
		// and build without it, rather than fail every build until it is replaced.
		c.log.Warn("catalog: leaving a resource out", slog.String("path", res[bad].Path), slog.Any("err", err))
		c.forgetIf(res[bad])
		res = slices.Delete(slices.Clone(res), bad, bad+1)
		if len(res) == 0 {
			return nil, nil, nil
		}
	}
	c.mu.Lock()
	c.versions = append(c.versions, v)
	var dropped []*Version
	for len(c.versions) > c.cfg.KeepVersions+1 {
		dropped = append(dropped, c.versions[0])
		c.versions = c.versions[1:]
	}
	c.mu.Unlock()
	for _, d := range dropped {
		if err := os.RemoveAll(d.Dir); err != nil {
			c.log.Warn("catalog: removing old version", slog.String("version", d.Name), slog.Any("err", err))
		}
	}
	return v, dropped, nil
}

func deleteVersion(vs []*Version, v *Version) []*Version {
	out := vs[:0:0]
	for _, x := range vs {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

// contentName names a version by a digest of its paths, types and content hashes.
func contentName(res []Resource) string {
	h := sha256.New()
	for _, r := range res {
		fmt.Fprintf(h, "%s\x00%s\x00%x\n", r.Path, r.ContentType, r.SHA256)
	}
	return "site-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// layOut links the resources into versions/<name>/<name>/..., adds padding files, and hashes the pieces. When
// one resource cannot be laid out it returns its index in res with the error; otherwise the index is -1.
func (c *Catalog) layOut(name string, res []Resource) (*Version, int, error) {
	pl := pieceLengthFor(res, c.cfg.PieceLength, c.cfg.MaxPieceLength)
	dir := filepath.Join(c.cfg.Dir, "versions", name)
	v := &Version{Name: name, Dir: dir, Built: time.Now(), Info: metainfo.Info{Name: name, PieceLength: pl}}
	fail := func(bad int, err error) (*Version, int, error) {
		_ = os.RemoveAll(dir)
		return nil, bad, fmt.Errorf("catalog: building %s: %w", name, err)
	}
	hasher := newPieceHasher(pl)
	var offset int64
	for i, r := range res {
		comps, err := pathComponents(r.Path)
		if err != nil {
			return fail(i, err)
		}
		dst := filepath.Join(append([]string{dir, name}, comps...)...)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fail(i, err)
		}
		if err := linkOrCopy(c.blobPath(r.SHA256), dst); err != nil {
			return fail(i, err)
		}
		if err := hashFile(hasher, dst, r.Size); err != nil {
			return fail(i, err)
		}
		v.Files = append(v.Files, File{Path: r.Path, ContentType: r.ContentType, Header: r.Header, Size: r.Size, Offset: offset,
			Index: len(v.Info.Files), SHA256: r.SHA256})
		v.Info.Files = append(v.Info.Files, metainfo.FileInfo{Length: r.Size, Path: comps})
		offset += r.Size
		if pad := (pl - r.Size%pl) % pl; pad != 0 && i < len(res)-1 {
			padPath := []string{padDir, strconv.FormatInt(pad, 10)}
			padFile := filepath.Join(append([]string{dir, name}, padPath...)...)
			if err := os.MkdirAll(filepath.Dir(padFile), 0o755); err != nil {
				return fail(-1, err)
			}
			if err := os.WriteFile(padFile, make([]byte, pad), 0o644); err != nil {
				return fail(-1, err)
			}
			hasher.Write(make([]byte, pad))
			v.Info.Files = append(v.Info.Files, metainfo.FileInfo{Length: pad, Path: padPath,
				ExtendedFileAttrs: metainfo.ExtendedFileAttrs{Attr: "p"}})
			offset += pad
		}
	}
	v.Info.Pieces = hasher.Sum()
	b, err := bencode.Marshal(v.Info)
	if err != nil {
		return fail(-1, err)
	}
	v.InfoBytes = b
	v.InfoHash = metainfo.HashBytes(b)
	return v, -1, nil
}

func linkOrCopy(src, dst string) error {
	_ = os.Remove(dst)
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// hashFile feeds a laid-out file to the piece hasher; it must hold exactly size bytes (the piece hashes
// would be wrong otherwise), so a file that is not what the catalogue recorded fails the entry.
func hashFile(h *pieceHasher, path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(h, f)
	if err == nil && n != size {
		err = fmt.Errorf("%s holds %d bytes, not %d", path, n, size)
	}
	return err
}

// pieceHasher computes the SHA-1 of each piece of a byte stream.
type pieceHasher struct {
	pl     int64
	n      int64 // bytes in the current piece
	h      hashState
	pieces []byte
}

type hashState interface {
	io.Writer
	Sum([]byte) []byte
	Reset()
}

func newPieceHasher(pl int64) *pieceHasher { return &pieceHasher{pl: pl, h: sha1.New()} }

func (p *pieceHasher) Write(b []byte) (int, error) {
	total := len(b)
	for len(b) > 0 {
		k := min(int64(len(b)), p.pl-p.n)
		p.h.Write(b[:k])
		p.n += k
		b = b[k:]
		if p.n == p.pl {
			p.pieces = p.h.Sum(p.pieces)
			p.h.Reset()
			p.n = 0
		}
	}
	return total, nil
}

// Sum returns the concatenated piece hashes, the last piece possibly short.
func (p *pieceHasher) Sum() []byte {
	if p.n > 0 {
		p.pieces = p.h.Sum(p.pieces)
		p.h.Reset()
		p.n = 0
	}
	return p.pieces
}

// Limits on the piece length pieceLengthFor picks.
const (
	// maxPaddingShare is the most of a version's bytes its padding may be: an eighth. swarmgate's engine
	// fills padding in itself, but other clients (stock WebTorrent, a helper's BitTorrent engine) may fetch
	// it, and every holder stores it; four times fewer pieces save browsers far more (in the crowd benchmark,
	// 256 KiB pieces instead of 64 KiB brought p95 page-complete time from 114 s to 66 s).
	maxPaddingShare = 8
	// minPieces is the fewest pieces a version may have, so that visitors arriving together still hold
	// different pieces to trade.
	minPieces = 32
)

// pieceLengthFor is the largest power of two from smallest to largest for which the version's padding (each file
// but the last padded to a piece boundary) stays within an eighth of its bytes and it keeps at least
// minPieces pieces; smallest when none is.
func pieceLengthFor(res []Resource, smallest, largest int64) int64 {
	var content int64
	for _, r := range res {
		content += r.Size
	}
	best := smallest
	for pl := smallest * 2; pl <= largest; pl *= 2 {
		var padding int64
		for _, r := range res[:max(len(res)-1, 0)] {
			padding += (pl - r.Size%pl) % pl
		}
		if padding*maxPaddingShare > content || (content+padding+pl-1)/pl < minPieces {
			break
		}
		best = pl
	}
	return best
}
