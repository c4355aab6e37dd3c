package seeder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
)

// Open returns a reader of one file of a torrent the seeder holds or is fetching, by its path below the
// torrent's name ('/'-separated). Its reads wait for verified pieces only; while the torrent is fetched, the
// pieces under the read position (and a read-ahead that grows as the reader reads on) go ahead of the rest
// of the fetch, so a helper serves what is asked of it while it fetches the rest. Reads end with ctx's error
// once ctx ends, and with an error when the torrent is dropped. ErrUnknownTorrent means the seeder has no
// such torrent (yet), ErrNoFile that the torrent has no such file.
func (s *Seeder) Open(ctx context.Context, ih metainfo.Hash, path string) (io.ReadSeekCloser, error) {
	t, err := s.live(ih)
	if err != nil {
		return nil, err
	}
	for _, f := range t.Files() {
		if fi := f.FileInfo(); strings.Join(fi.BestPath(), "/") != path {
			continue
		}
		r := f.NewReader()
		r.SetContext(ctx)
		return &liveReader{Reader: r, ctx: ctx, t: t}, nil
	}
	return nil, fmt.Errorf("seeder: torrent %s: %q: %w", ih.HexString(), path, ErrNoFile)
}

// readRetries bounds how often liveReader reads again after a read that failed with the torrent still
// live, a few milliseconds apart.
const readRetries = 20

// liveReader is a file reader of a torrent being fetched that reads again when a read waiting for a piece
// fails while the torrent is still live: nudge (fetch.go) disallows downloads for an instant, which ends
// every waiting read with an error, and a response cut there would cost a client its file.
type liveReader struct {
	torrent.Reader
	ctx context.Context
	t   *torrent.Torrent
}

func (r *liveReader) Read(b []byte) (int, error) {
	for try := 0; ; try++ {
		n, err := r.Reader.Read(b)
		if n > 0 || err == nil || errors.Is(err, io.EOF) || r.ctx.Err() != nil || try == readRetries {
			return n, err
		}
		select {
		case <-r.t.Closed():
			return n, err
		case <-r.ctx.Done():
			return n, err
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// WaitPiece puts piece i of a torrent the seeder holds or is fetching ahead of the rest of the fetch, and
// waits until it is verified (at once when it already is).
func (s *Seeder) WaitPiece(ctx context.Context, ih metainfo.Hash, i int) error {
	t, err := s.live(ih)
	if err != nil {
		return err
	}
	if i < 0 || i >= t.NumPieces() {
		return fmt.Errorf("seeder: piece %d of %d: %w", i, t.NumPieces(), ErrNoPiece)
	}
	sub := t.SubscribePieceStateChanges()
	defer sub.Close()
	p := t.Piece(i)
	p.SetPriority(torrent.PiecePriorityNow)
	for !p.State().Complete {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-s.ctx.Done():
			return ErrClosed
		case <-t.Closed():
			return fmt.Errorf("seeder: torrent %s: %w", ih.HexString(), ErrUnknownTorrent)
		case <-sub.Values:
		}
	}
	return nil
}

// live is the torrent with infohash ih that the seeder holds or is fetching, once it has been added.
func (s *Seeder) live(ih metainfo.Hash) (*torrent.Torrent, error) {
	s.mu.Lock()
	e, ok := s.torrents[ih]
	var t *torrent.Torrent
	if ok {
		t = e.t
	}
	s.mu.Unlock()
	if t == nil {
		return nil, fmt.Errorf("seeder: torrent %s: %w", ih.HexString(), ErrUnknownTorrent)
	}
	return t, nil
}
