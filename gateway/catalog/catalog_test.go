package catalog

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/swarmgate/swarmgate/seeder"
)

func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func open(t *testing.T) *Catalog {
	t.Helper()
	c, err := Open(Config{Dir: t.TempDir(), MinSize: 1000, PieceLength: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func learn(t *testing.T, c *Catalog, path string, body []byte) bool {
	t.Helper()
	changed, err := c.Learn(path, Meta{ContentType: "application/octet-stream"}, int64(len(body)), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return changed
}

func TestBuildPadsFilesToPieceBoundariesAndVerifies(t *testing.T) {
	c := open(t)
	big1, big2, small := testData(40_000, 1), testData(70_001, 2), testData(500, 3)
	learn(t, c, "/img/a.jpg", big1)
	learn(t, c, "/video.mp4?v=2", big2)
	if learn(t, c, "/small.css", small) {
		t.Fatal("a resource under MinSize must not change the swarmable content")
	}
	v, dropped, err := c.Build()
	if err != nil || v == nil || dropped != nil {
		t.Fatalf("build: %v %v %v", v, dropped, err)
	}
	if len(v.Files) != 2 {
		t.Fatalf("files %+v", v.Files)
	}
	for _, f := range v.Files {
		if f.Offset%v.Info.PieceLength != 0 {
			t.Fatalf("%s starts at %d, not on a piece boundary", f.Path, f.Offset)
		}
	}
	if got := len(v.Info.Files); got != 3 || v.Info.Files[1].Attr != "p" {
		t.Fatalf("want file, BEP 47 pad, file: %+v", v.Info.Files)
	}

	// An independent BitTorrent implementation finds every piece complete in the laid-out directory.
	cfg := torrent.NewDefaultClientConfig()
	cfg.DataDir = v.Dir
	cfg.NoDHT, cfg.DisableTCP, cfg.DisableUTP, cfg.NoDefaultPortForwarding = true, true, true, true
	cfg.ListenPort = 0
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tt, err := cl.AddTorrent(v.MetaInfo(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	<-tt.GotInfo()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tt.VerifyDataContext(ctx); err != nil {
		t.Fatal(err)
	}
	if tt.BytesMissing() != 0 {
		t.Fatalf("anacrolix finds %d bytes missing", tt.BytesMissing())
	}

	// Webseed reads: files by torrent path, padding as zeros, nothing else.
	rc, n, err := v.Open("video.mp4?v=2")
	if err != nil || n != int64(len(big2)) {
		t.Fatal(n, err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, big2) {
		t.Fatal("webseed read differs")
	}
	pad := v.Info.Files[1]
	rc, n, err = v.Open(strings.Join(pad.Path, "/"))
	if err != nil || n != pad.Length {
		t.Fatal(n, err)
	}
	got, _ = io.ReadAll(rc)
	if !bytes.Equal(got, make([]byte, pad.Length)) {
		t.Fatal("padding is not zeros")
	}
	for _, p := range []string{"small.css", "../etc/passwd", ".pad/99999999", ".pad/x"} {
		if _, _, err := v.Open(p); !errors.Is(err, ErrNotInVersion) {
			t.Fatalf("Open(%q) = %v", p, err)
		}
	}
}

func TestVersionsChangeOnlyWithContentAndRotate(t *testing.T) {
	c, err := Open(Config{Dir: t.TempDir(), MinSize: 1000, PieceLength: 16 << 10, KeepVersions: 1})
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := c.Build(); v != nil {
		t.Fatal("nothing swarmable yet, yet a version")
	}
	learn(t, c, "/a", testData(5000, 1))
	v1, _, _ := c.Build()
	if learn(t, c, "/a", testData(5000, 1)) {
		t.Fatal("same content reported as a change")
	}
	if v, _, _ := c.Build(); v != v1 {
		t.Fatal("unchanged content built a new version")
	}
	learn(t, c, "/a", testData(5000, 2))
	v2, _, _ := c.Build()
	if v2 == v1 || v2.InfoHash == v1.InfoHash {
		t.Fatal("changed content kept the version")
	}
	learn(t, c, "/b", testData(5000, 3))
	v3, dropped, _ := c.Build()
	if len(dropped) != 1 || dropped[0] != v1 {
		t.Fatalf("with KeepVersions 1, v1 must be dropped: %v", dropped)
	}
	if _, err := c.Version(v1.Name); !errors.Is(err, ErrNoVersion) {
		t.Fatal("dropped version still found")
	}
	if vs := c.Versions(); len(vs) != 2 || vs[0] != v2 || vs[1] != v3 || c.Current() != v3 {
		t.Fatalf("versions %v", vs)
	}
}

func TestLearnRefusesBadInput(t *testing.T) {
	c := open(t)
	for _, p := range []string{"relative", "/dir/", "/a/../b", "/.pad/3", "/a//b"} {
		if _, err := c.Learn(p, Meta{}, 1, strings.NewReader("x")); !errors.Is(err, ErrBadPath) {
			t.Fatalf("Learn(%q) = %v", p, err)
		}
	}
	if _, err := c.Learn("/t", Meta{}, 10, strings.NewReader("short")); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated body: %v", err)
	}
	if _, ok := c.Lookup("/t"); ok {
		t.Fatal("truncated body stored")
	}
}

func TestReadPieceMatchesPieceHashes(t *testing.T) {
	c := open(t)
	learn(t, c, "/a", testData(40_000, 1))
	learn(t, c, "/b", testData(50_000, 2))
	v, _, err := c.Build()
	if err != nil {
		t.Fatal(err)
	}
	n := len(v.Info.Pieces) / 20
	for i := range n {
		p, err := seeder.ReadPiece(&v.Info, v.Dir, i)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha1.Sum(p)
		if !bytes.Equal(sum[:], v.Info.Pieces[i*20:i*20+20]) {
			t.Fatalf("piece %d does not hash to the torrent's hash", i)
		}
	}
	if _, err := seeder.ReadPiece(&v.Info, v.Dir, n); !errors.Is(err, seeder.ErrNoPiece) {
		t.Fatalf("piece past the end: %v", err)
	}
}

func TestResourcesAreBounded(t *testing.T) {
	c, err := Open(Config{Dir: t.TempDir(), MinSize: 1000, PieceLength: 16 << 10, MaxResources: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		learn(t, c, fmt.Sprintf("/photo-%d.png", i), testData(2000, 1))
	}
	v, _, err := c.Build()
	if err != nil || len(v.Files) != 3 {
		t.Fatalf("with MaxResources 3: %v files, %v", len(v.Files), err)
	}
	if !learn(t, c, "/photo-0.png", testData(2000, 2)) {
		t.Fatal("a path already held must still be updated when the catalogue is full")
	}
}

func TestPieceLengthFor(t *testing.T) {
	sized := func(sizes ...int64) []Resource {
		var res []Resource
		for _, n := range sizes {
			res = append(res, Resource{Size: n})
		}
		return res
	}
	many := make([]int64, 100)
	for i := range many {
		many[i] = 100_000
	}
	for _, tc := range []struct {
		name string
		res  []Resource
		want int64
	}{
		// Five 2.1 MB photos: 256 KiB pads 10% (512 KiB would pad 20%), in 41 pieces.
		{"photos", sized(2_100_000, 2_100_000, 2_100_000, 2_100_000, 2_100_000), 256 << 10},
		// A hundred 100 kB images: anything above 64 KiB pads over a quarter.
		{"many small", sized(many...), 64 << 10},
		// One 100 MB file has no padding: the largest, still 100 pieces.
		{"one big file", sized(100 << 20), 1 << 20},
		// One small file: too few pieces for anything larger.
		{"one small file", sized(70_000), 64 << 10},
		{"nothing", nil, 64 << 10},
	} {
		if got := pieceLengthFor(tc.res, 64<<10, 1<<20); got != tc.want {
			t.Errorf("%s: piece length %d KiB, want %d KiB", tc.name, got>>10, tc.want>>10)
		}
	}
}

// TestVersionsGetTheirOwnPieceLength: a catalogue left to its defaults lays out a version of big files in
// larger pieces, with every file still starting on a piece boundary.
func TestVersionsGetTheirOwnPieceLength(t *testing.T) {
	c, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // 6 MB: 256 KiB would leave fewer than minPieces pieces
		learn(t, c, fmt.Sprintf("/photo-%d.png", i), testData(2_000_000+i, uint64(i)))
	}
	v, _, err := c.Build()
	if err != nil {
		t.Fatal(err)
	}
	if v.Info.PieceLength != 128<<10 {
		t.Errorf("piece length %d KiB, want 128", v.Info.PieceLength>>10)
	}
	for _, f := range v.Files {
		if f.Offset%v.Info.PieceLength != 0 {
			t.Errorf("%s starts at %d, not on a piece boundary", f.Path, f.Offset)
		}
	}
}
