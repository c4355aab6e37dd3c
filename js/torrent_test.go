package js_test

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// testTorrent is a multi-file torrent on disk under root/<name>/, padding files (zeros) included.
type testTorrent struct {
	name      string
	root      string
	infoBytes []byte
	ih        metainfo.Hash
	files     map[string]string // path below name → SHA-256 hex, padding files left out
	offsets   map[string]int64  // path below name → offset in the byte stream
	length    int64             // of the byte stream, padding included
}

// makeTorrent writes random files of the given sizes and builds their torrent, each file but the last
// padded to the piece length (BEP 47), as gateway/catalog lays versions out.
func makeTorrent(t testing.TB, root, name string, pieceLength int64, sizes ...int) *testTorrent {
	t.Helper()
	paths := [][]string{{"img", "hero image.jpg"}, {"media", "clip.mp4"}, {"z.bin"}, {"more", "a.bin"}}
	tt := &testTorrent{name: name, root: root, files: map[string]string{}, offsets: map[string]int64{}}
	info := metainfo.Info{Name: name, PieceLength: pieceLength}
	var stream []byte
	write := func(path []string, data []byte) {
		p := filepath.Join(append([]string{root, name}, path...)...)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		stream = append(stream, data...)
	}
	for k, size := range sizes {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		write(paths[k], data)
		sum := sha256.Sum256(data)
		tt.files[strings.Join(paths[k], "/")] = hex.EncodeToString(sum[:])
		tt.offsets[strings.Join(paths[k], "/")] = int64(len(stream)) - int64(size)
		info.Files = append(info.Files, metainfo.FileInfo{Length: int64(size), Path: paths[k]})
		if pad := (pieceLength - int64(size)%pieceLength) % pieceLength; pad != 0 && k < len(sizes)-1 {
			padPath := []string{".pad", strconv.FormatInt(pad, 10)}
			write(padPath, make([]byte, pad))
			info.Files = append(info.Files, metainfo.FileInfo{Length: pad, Path: padPath,
				ExtendedFileAttrs: metainfo.ExtendedFileAttrs{Attr: "p"}})
		}
	}
	for off := 0; off < len(stream); off += int(pieceLength) {
		sum := sha1.Sum(stream[off:min(off+int(pieceLength), len(stream))])
		info.Pieces = append(info.Pieces, sum[:]...)
	}
	var err error
	if tt.infoBytes, err = bencode.Marshal(info); err != nil {
		t.Fatal(err)
	}
	tt.ih = metainfo.HashBytes(tt.infoBytes)
	tt.length = int64(len(stream))
	return tt
}

// torrentFile is the .torrent stock WebTorrent clients are given.
func (tt *testTorrent) torrentFile(t testing.TB, tracker string, webseeds ...string) string {
	t.Helper()
	b, err := bencode.Marshal(metainfo.MetaInfo{InfoBytes: tt.infoBytes, Announce: tracker, UrlList: webseeds})
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// stalledConn passes the first left bytes written to it and holds every later write until release is closed,
// then fails it: a peer whose machine is too busy to send.
type stalledConn struct {
	net.Conn
	left    int64
	sent    atomic.Int64
	release <-chan struct{}
}

func (c *stalledConn) Write(p []byte) (int, error) {
	if c.sent.Add(int64(len(p))) > c.left {
		<-c.release
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

// checkFiles checks the files a client reports (path → SHA-256) against the torrent's.
func checkFiles(t testing.TB, who string, got map[string]string, tt *testTorrent) {
	t.Helper()
	if len(got) != len(tt.files) {
		t.Errorf("%s has files %v, want %v", who, got, tt.files)
	}
	for path, want := range tt.files {
		if got[path] != want {
			t.Errorf("%s: %s has SHA-256 %q, want %s", who, path, got[path], want)
		}
	}
}

// countIn counts the pieces of order in [first, last].
func countIn(order []int, first, last int) int {
	n := 0
	for _, i := range order {
		if i >= first && i <= last {
			n++
		}
	}
	return n
}
