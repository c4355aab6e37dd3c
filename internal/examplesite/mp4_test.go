package examplesite

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestMP4 makes a tiny video with ffmpeg and checks that it is an MP4 with its moov box before its media
// data (what lets a browser play from the first bytes), that the cache answers a second call without ffmpeg,
// and that a missing ffmpeg is ErrFFmpeg.
func TestMP4(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg not found (bash .ci/test installs Debian's ffmpeg):", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	v := Video{Width: 160, Height: 96, Seconds: 1, Kbps: 200}
	path, err := MP4(ctx, "ffmpeg", dir, v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var boxes []string
	for off := 0; off+8 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[off:]))
		boxes = append(boxes, string(b[off+4:off+8]))
		if n < 8 {
			break
		}
		off += n
	}
	moov, mdat := -1, -1
	for i, box := range boxes {
		switch box {
		case "moov":
			moov = i
		case "mdat":
			mdat = i
		}
	}
	if len(boxes) == 0 || boxes[0] != "ftyp" || moov < 0 || mdat < 0 || moov > mdat {
		t.Errorf("top-level boxes %v: want ftyp first and moov before mdat", boxes)
	}
	if len(b) < int(v.Size())/4 || len(b) > 4*int(v.Size()) {
		t.Errorf("%d bytes for a video of about %d", len(b), v.Size())
	}
	again, err := MP4(ctx, "/nonexistent/ffmpeg", dir, v)
	if err != nil || again != path {
		t.Errorf("second call: %q, %v; want the cached %q", again, err, path)
	}
	if _, err := MP4(ctx, "/nonexistent/ffmpeg", dir, Video{Width: 160, Height: 96, Seconds: 2, Kbps: 200}); !errors.Is(err, ErrFFmpeg) {
		t.Errorf("without ffmpeg: %v, want ErrFFmpeg", err)
	}
}
