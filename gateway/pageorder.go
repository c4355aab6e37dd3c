package gateway

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/swarmgate/swarmgate/gateway/catalog"
)

// The order in which the site's pages need its files, for the helpers recruited in a crowd
// (swarmapi.Job.First). In a crowd's first seconds no browser holds anything yet: a helper still fetching is
// the peer the crowd trades with first, so what it fetches first is what every visitor can have first. Left to
// its own order it fetched the page's files in an order of its own, and a page's first image came among the
// last (see docs/bench/crowd-video-20mbit.txt). Pages are read for it in every state, including normal times
// when they are not rewritten, since the crowd is declared before its first rewritten page.

const (
	// maxOrderPages bounds the pages remembered: one with the lowest score makes way for a new one.
	maxOrderPages = 64
	// maxOrderFiles bounds the files a page contributes, and the list a job carries.
	maxOrderFiles = 32
	// orderHalfLife is how fast a page's views fade: a crowd's page outranks last week's favourite within
	// a few minutes of its arrival.
	orderHalfLife = time.Minute
)

// pageOrder remembers the swarm files that the site's recently viewed pages name in their heavy elements,
// in document order, with how much each page is viewed. The zero value is ready to use; it is safe for
// concurrent use.
type pageOrder struct {
	mu    sync.Mutex
	pages map[string]*pageViews // by URL path, without query
	seq   uint64
}

// pageViews is one remembered page.
type pageViews struct {
	files []string  // URL paths of its heavy elements' files, in document order, each once
	score float64   // views, each fading with orderHalfLife, as of at
	at    time.Time // when score was last brought up to date
	seq   uint64    // when the page was first remembered: the older wins a tie
}

// scoreAt returns the page's score as of now.
func (p *pageViews) scoreAt(now time.Time) float64 {
	return p.score * math.Exp2(-now.Sub(p.at).Seconds()/orderHalfLife.Seconds())
}

// saw records a view of the page at path, whose heavy elements name files (URL paths, in document order).
func (o *pageOrder) saw(path string, files []string, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pages == nil {
		o.pages = map[string]*pageViews{}
	}
	p, ok := o.pages[path]
	if !ok {
		if len(o.pages) >= maxOrderPages {
			o.dropLowestLocked(now)
		}
		o.seq++
		p = &pageViews{at: now, seq: o.seq}
		o.pages[path] = p
	}
	p.score = p.scoreAt(now) + 1
	p.at = now
	p.files = p.files[:0]
	for _, f := range files {
		if len(p.files) == maxOrderFiles {
			break
		}
		if !slices.Contains(p.files, f) {
			p.files = append(p.files, f)
		}
	}
}

// dropLowestLocked forgets the page with the lowest score (the newest of equals). o.mu is held.
func (o *pageOrder) dropLowestLocked(now time.Time) {
	var (
		low      string
		lowScore float64
		lowSeq   uint64
		found    bool
	)
	for path, p := range o.pages {
		if sc := p.scoreAt(now); !found || sc < lowScore || sc == lowScore && p.seq > lowSeq {
			low, lowScore, lowSeq, found = path, sc, p.seq, true
		}
	}
	delete(o.pages, low)
}

// first returns the files of version v in the order the site's pages need them: the files of the page with
// the highest score in its document order, then those of the next page not listed yet, and so on, at most
// maxOrderFiles; files v does not hold are left out.
func (o *pageOrder) first(v *catalog.Version, now time.Time) []string {
	o.mu.Lock()
	pages := make([]*pageViews, 0, len(o.pages))
	for _, p := range o.pages {
		pages = append(pages, &pageViews{files: slices.Clone(p.files), score: p.scoreAt(now), seq: p.seq})
	}
	o.mu.Unlock()
	slices.SortFunc(pages, func(a, b *pageViews) int {
		return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(a.seq, b.seq))
	})
	var out []string
	for _, p := range pages {
		for _, f := range p.files {
			if len(out) == maxOrderFiles {
				return out
			}
			if _, ok := v.File(f); ok && !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}
