package seeder

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/anacrolix/torrent/metainfo"
)

// ErrNoPiece is returned by ReadPiece for a piece index the torrent does not have.
var ErrNoPiece = errors.New("no such piece")

// ReadPiece returns the data of piece i of a torrent laid out under dir as dir/<name>/<path...> (a version's
// Dir, or a helper's download of it); padding files read as zeros whether or not they exist on disk.
func ReadPiece(info *metainfo.Info, dir string, i int) ([]byte, error) {
	pl := info.PieceLength
	total := info.TotalLength()
	start := int64(i) * pl
	if i < 0 || start >= total {
		return nil, fmt.Errorf("seeder: piece %d of %d bytes: %w", i, total, ErrNoPiece)
	}
	buf := make([]byte, min(pl, total-start))
	var off int64
	for _, f := range info.UpvertedFiles() {
		fStart, fEnd := off, off+f.Length
		off = fEnd
		lo, hi := max(fStart, start), min(fEnd, start+int64(len(buf)))
		if lo >= hi || f.Attr == "p" {
			continue // outside the piece, or padding (zeros already)
		}
		fh, err := os.Open(filepath.Join(append([]string{dir, info.Name}, f.Path...)...))
		if err != nil {
			return nil, fmt.Errorf("seeder: %w", err)
		}
		_, err = fh.ReadAt(buf[lo-start:hi-start], lo-fStart)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("seeder: reading piece %d: %w", i, err)
		}
	}
	return buf, nil
}
