package gateway

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/gateway/catalog"
)

func TestPageOrder(t *testing.T) {
	v := &catalog.Version{}
	for _, p := range []string{"/hero.jpg", "/clip.mp4", "/a.jpg", "/b.jpg", "/c.jpg"} {
		v.Files = append(v.Files, catalog.File{Path: p})
	}
	now := time.Unix(1_800_000_000, 0)
	var o pageOrder
	if got := o.first(v, now); got != nil {
		t.Fatalf("no page seen: %q", got)
	}

	// The most viewed page's files come first, in its order, each once; then the next page's new ones. A
	// file the version does not hold is left out.
	o.saw("/news", []string{"/c.jpg", "/gone.jpg", "/a.jpg"}, now)
	o.saw("/", []string{"/hero.jpg", "/clip.mp4", "/a.jpg", "/hero.jpg"}, now)
	o.saw("/", []string{"/hero.jpg", "/clip.mp4", "/a.jpg", "/hero.jpg"}, now.Add(time.Second))
	want := []string{"/hero.jpg", "/clip.mp4", "/a.jpg", "/c.jpg"}
	if got := o.first(v, now.Add(2*time.Second)); !slices.Equal(got, want) {
		t.Errorf("first %q, want %q", got, want)
	}

	// Views fade: a page viewed three times ten minutes ago is outranked by one viewed once now.
	o.saw("/news", []string{"/b.jpg"}, now.Add(10*time.Minute))
	want = []string{"/b.jpg", "/hero.jpg", "/clip.mp4", "/a.jpg"}
	if got := o.first(v, now.Add(10*time.Minute)); !slices.Equal(got, want) {
		t.Errorf("after fading: first %q, want %q", got, want)
	}

	// At most maxOrderPages pages are kept: a new page makes way by dropping the lowest score, so the
	// page viewed most stays.
	later := now.Add(11 * time.Minute)
	o.saw("/", []string{"/hero.jpg"}, later)
	o.saw("/", []string{"/hero.jpg"}, later)
	for i := range 2 * maxOrderPages {
		o.saw(fmt.Sprintf("/p%d", i), []string{"/c.jpg"}, later)
	}
	if n := len(o.pages); n != maxOrderPages {
		t.Errorf("%d pages kept, want %d", n, maxOrderPages)
	}
	if got := o.first(v, later); len(got) != 2 || got[0] != "/hero.jpg" || got[1] != "/c.jpg" {
		t.Errorf("after many pages: first %q, want /hero.jpg then /c.jpg", got)
	}

	// A page names at most maxOrderFiles files, and a job lists at most as many.
	var many []string
	for i := range maxOrderFiles + 5 {
		p := fmt.Sprintf("/m%d.jpg", i)
		many = append(many, p)
		v.Files = append(v.Files, catalog.File{Path: p})
	}
	for range 10 {
		o.saw("/gallery", many, later)
	}
	if got := o.first(v, later); !slices.Equal(got, many[:maxOrderFiles]) {
		t.Errorf("a long page: first %q, want its first %d files", got, maxOrderFiles)
	}
}
