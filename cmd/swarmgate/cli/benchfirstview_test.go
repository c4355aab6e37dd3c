package cli

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestBenchFirstViewFlags checks that `bench firstview` is registered and refuses what it cannot run before
// it starts anything (a real run starts Chromium: bench/firstview's own test does that).
func TestBenchFirstViewFlags(t *testing.T) {
	var help strings.Builder
	if code := Run(context.Background(), []string{"bench", "firstview", "-h"}, io.Discard, &help); code != 0 {
		t.Errorf("bench firstview -h: exit %d, want 0", code)
	}
	for _, flag := range []string{"-runs", "-modes", "-networks", "-rtt", "-down", "-json"} {
		if !strings.Contains(help.String(), flag) {
			t.Errorf("bench firstview -h does not mention %s", flag)
		}
	}
	for _, bad := range [][]string{
		{"-modes", "direct,cdn"},
		{"-networks", "3g"},
		{"-down", "fast"},
		{"-down", "0"},
		{"-rtt", "-1s"},
		{"-video-size", "big"},
		{"-video-size", "641x360"},
		{"-runs", "-1"},
		{"-hero-side", "10"},
		{"extra"},
	} {
		args := append([]string{"bench", "firstview"}, bad...)
		if code := Run(context.Background(), args, io.Discard, io.Discard); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}
