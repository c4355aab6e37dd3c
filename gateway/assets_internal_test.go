package gateway

import "testing"

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		accept string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"x-gzip", true},
		{"gzip, deflate, br, zstd", true}, // Chromium's
		{"br;q=1.0, gzip;q=0.8, *;q=0.1", true},
		{"identity", false},
		{"deflate, br", false},
		{"gzip;q=0", false},
		{"gzip; q=0.000", false},
		{"gzip;q=0.0001", true},
		{"gzip;q=0.5", true},
		{"gzip;Q=1", true},
		{"gzip;q=", false},      // no number
		{"gzip;q=abc", false},   // not a number
		{"gzip;q=2", false},     // out of range
		{"*", true},             // any coding
		{"*;q=0", false},        // none but identity
		{"gzip;q=0, *", false},  // gzip itself refused
		{"*;q=0.3, gzip", true}, // order does not matter
		{"deflate;q=0.5, *;q=0", false},
	} {
		if got := acceptsGzip(tc.accept); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.accept, got, tc.want)
		}
	}
}
