package firstview

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestParseModes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Mode
		err  bool
	}{
		{"", Modes, false},
		{"direct,gateway,peer", Modes, false},
		{" peer , direct ", []Mode{Peer, Direct}, false},
		{"gateway,", []Mode{Gateway}, false},
		{"direct,cdn", nil, true},
		{"Direct", nil, true},
	} {
		got, err := ParseModes(tc.in)
		if (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrConfig)) {
			t.Errorf("ParseModes(%q) error = %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ParseModes(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseNetworks(t *testing.T) {
	em := Network{Name: "50ms-10mbit", Latency: 50 * time.Millisecond, Download: 10e6}
	for _, tc := range []struct {
		in   string
		want []Network
		err  bool
	}{
		{"", []Network{em, Loopback}, false},
		{"emulated", []Network{em}, false},
		{"loopback, emulated", []Network{Loopback, em}, false},
		{"3g", nil, true},
	} {
		got, err := ParseNetworks(tc.in, em)
		if (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrConfig)) {
			t.Errorf("ParseNetworks(%q) error = %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ParseNetworks(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
