package gateway

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/nginxtest"
	"github.com/swarmgate/swarmgate/internal/testutil"
)

func TestRangeTotal(t *testing.T) {
	for v, want := range map[string]int64{"bytes 0-99/1234": 1234, "bytes */5000": 5000, "bytes 0-99/*": -1, "": -1,
		"items 0-1/2": -1, "bytes 0-99/-3": -1} {
		if got := rangeTotal(v); got != want {
			t.Errorf("rangeTotal(%q) = %d, want %d", v, got, want)
		}
	}
}

// TestMediaFetchedByRangeEntersTheSwarm: an MP4 that clients fetch only by Range (as browsers do) is
// fetched whole from a real nginx once, in the background, and enters the manifest; clients' ranges stay
// exact meanwhile.
func TestMediaFetchedByRangeEntersTheSwarm(t *testing.T) {
	clip := testBytes(300_000, 9)
	ngx := nginxtest.Start(t, nginxtest.Options{Files: map[string][]byte{"/media/clip.mp4": clip}})
	g := startGateway(t, Config{Site: SiteConfig{Origin: mustURL(ngx.URL)}})
	for _, r := range [][2]int{{0, 1023}, {1024, 65535}, {200_000, 299_999}} {
		resp, b := get(t, g.url("/media/clip.mp4"), "Range", "bytes="+itoa(r[0])+"-"+itoa(r[1]))
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, clip[r[0]:r[1]+1]) {
			t.Fatalf("range %v: status %d, %d bytes", r, resp.StatusCode, len(b))
		}
	}
	testutil.Eventually(t, 10*time.Second, "the clip in the manifest", func() bool {
		m := manifestOf(t, g)
		if m == nil {
			return false
		}
		_, ok := m.Files["/media/clip.mp4"]
		return ok
	})
	whole := 0
	for _, r := range ngx.Settled(t) {
		if r.URI == "/media/clip.mp4" && r.Status == http.StatusOK {
			whole++
		}
	}
	if whole != 1 {
		t.Errorf("nginx sent the whole clip %d times, want once", whole)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
