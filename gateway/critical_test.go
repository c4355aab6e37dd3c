package gateway

import (
	"math"
	"net/http/httptest"
	"testing"
)

// TestCritical: what a page waits on goes first on the site's uplink, bounded per response (the tracker's
// signalling for the socket's life); files and the webseed do not.
func TestCritical(t *testing.T) {
	for _, tc := range []struct {
		path, dest string
		want       int64
	}{
		{"/", "document", criticalBytes},
		{"/app.js", "script", criticalBytes},
		{"/style.css", "style", criticalBytes},
		{"/.swarm/loader.js", "script", criticalBytes},
		{"/.swarm/manifest.json", "empty", criticalBytes},
		{"/.swarm/engine-ABC.js", "", criticalBytes}, // a worker's module fetch, a modulepreload
		{"/.swarm/sw.js", "serviceworker", criticalBytes},
		{"/.swarm/announce", "", math.MaxInt64},
		{"/.swarm/seed/v1/media/photo.png", "empty", 0},
		{"/media/photo.png", "image", 0},
		{"/media/clip.mp4", "video", 0},
		{"/media/photo.png", "", 0}, // a plain client
	} {
		r := httptest.NewRequest("GET", tc.path, nil)
		if tc.dest != "" {
			r.Header.Set("Sec-Fetch-Dest", tc.dest)
		}
		if got := critical(r); got != tc.want {
			t.Errorf("critical(%s, Sec-Fetch-Dest %q) = %d, want %d", tc.path, tc.dest, got, tc.want)
		}
	}
}
