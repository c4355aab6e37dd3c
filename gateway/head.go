package gateway

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/swarmgate/swarmgate/gateway/catalog"
	"github.com/swarmgate/swarmgate/swarmapi"
)

// A page view's head: the first pieces of the heavy elements a page rewritten outside a crowd names, sent
// over HTTP in one response (swarmapi.PathHead) that the page preloads. The engine would take the same pieces
// from the site's webseed anyway (outside a crowd, a stream's waited-for piece is due at once until a peer has
// sent anything), but only once the loader, the manifest and the engine had arrived and its stream had been
// opened: a round trip and a few hundred milliseconds of start-up later. The preload scanner asks for the
// head with the page's first requests instead, and the engine verifies every piece of it as from any source.

const (
	// headBytes bounds the pieces one page's head names (their full length, padding included), and
	// headPieces their number.
	headBytes  = 1 << 20
	headPieces = 8
)

// headRef is a heavy element's file as the rewriter met it: its URL path and whether it is media.
type headRef struct {
	path  string
	media bool
}

// headTag returns the preload of a page's head, within headBytes and headPieces: the first piece of each
// media file, then the first piece of each image, each in the order the page names them; "" when there is
// none. Media goes first because more waits on its first piece: its metadata, then the decoder's start (400 to
// 600 ms in Chromium before the first frame, direct or not). The rest of each file comes as it would without
// a head (streams.ts): measured with bench firstview, a head that also held the rest of the hero image (1 MiB
// in all, against 512 KiB) brought the first frame up to 300 ms later and the hero itself later too, since the
// head's response shares the page's link with everything else the page loads.
func headTag(v *catalog.Version, refs []headRef) string {
	pl := v.Info.PieceLength
	var media, images []int
	seen := map[int]bool{}
	for _, r := range refs {
		f, ok := v.File(r.path)
		if !ok || f.Size == 0 || seen[int(f.Offset/pl)] {
			continue
		}
		first := int(f.Offset / pl)
		seen[first] = true
		if r.media {
			media = append(media, first)
		} else {
			images = append(images, first)
		}
	}
	var list []string
	for _, i := range append(media, images...) {
		if len(list) == headPieces || int64(len(list)+1)*pl > headBytes {
			break
		}
		list = append(list, strconv.Itoa(i))
	}
	if len(list) == 0 {
		return ""
	}
	return `<link rel="preload" href="` + swarmapi.PathHead + v.Name + "/" + strings.Join(list, ",") + `" as="fetch" crossorigin>`
}

var errHead = errors.New("gateway: bad head")

// parseHead reads a PathHead URL's piece list: at most headPieces indices of the version, none twice.
func parseHead(list string, v *catalog.Version) ([]int, error) {
	parts := strings.Split(list, ",")
	if len(parts) > headPieces {
		return nil, fmt.Errorf("%w: more than %d pieces", errHead, headPieces)
	}
	out := make([]int, 0, len(parts))
	for _, p := range parts {
		i, err := strconv.Atoi(p)
		if err != nil || i < 0 || i >= v.Info.NumPieces() || strconv.Itoa(i) != p {
			return nil, fmt.Errorf("%w: piece %q", errHead, p)
		}
		for _, j := range out {
			if j == i {
				return nil, fmt.Errorf("%w: piece %d twice", errHead, i)
			}
		}
		out = append(out, i)
	}
	return out, nil
}

// serveHead sends the pieces a PathHead URL names, one after another, each without its padding.
func (s *Server) serveHead(w http.ResponseWriter, r *http.Request) {
	v, err := s.cat.Version(r.PathValue("version"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	pieces, err := parseHead(r.PathValue("pieces"), v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	type span struct {
		f      catalog.File
		off, n int64
	}
	spans := make([]span, 0, len(pieces))
	var total int64
	for _, i := range pieces {
		f, off, n, _ := v.PieceSpan(i) // n is 0 for a piece of padding only: the engine needs none of its bytes
		spans = append(spans, span{f, off, n})
		total += n
	}
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable") // a version never changes
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(total, 10))
	out := countingResponseWriter{w, &s.counters.gatewayHTTP}
	for _, sp := range spans {
		if sp.n == 0 {
			continue
		}
		if err := copySpan(out, v, sp.f, sp.off, sp.n); err != nil {
			// The status line has gone: the response ends short, and the engine takes the rest elsewhere.
			s.log.Warn("gateway: head", slog.String("version", v.Name), slog.Any("err", err))
			return
		}
	}
}

// copySpan writes n bytes of a version's file from off.
func copySpan(w io.Writer, v *catalog.Version, f catalog.File, off, n int64) error {
	fh, _, err := v.Open(strings.TrimPrefix(f.Path, "/"))
	if err != nil {
		return err
	}
	defer fh.Close()
	if _, err := fh.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("gateway: head: %w", err)
	}
	if _, err := io.CopyN(w, fh, n); err != nil {
		return fmt.Errorf("gateway: head: %s: %w", f.Path, err)
	}
	return nil
}
