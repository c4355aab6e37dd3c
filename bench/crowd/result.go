package crowd

import (
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"text/tabwriter"
	"time"
)

// Result is a benchmark's figures.
type Result struct {
	Config    Config       `json:"config"`
	SiteBytes int64        `json:"siteBytes"` // one visitor's worth: the page and all its files
	Runs      []ModeResult `json:"runs"`
}

// ModeResult is one mode's figures.
type ModeResult struct {
	Mode     Mode    `json:"mode"`
	Label    string  `json:"label"`
	Duration float64 `json:"duration"` // seconds, first arrival to last visit's end
	// Browsers' page-complete times, in seconds; a failed visit counts as the page timeout.
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	// PlainP50 and PlainP95 are the plain HTTP visitors' times.
	PlainP50 float64 `json:"plainP50"`
	PlainP95 float64 `json:"plainP95"`
	Failed   int     `json:"failed"`
	// SiteSent is every byte the site's machine sent (origin and gateway: HTTP and seeding); HelpersSent the
	// cooperating servers'; PeersSent what browsers sent each other (their engines' counts).
	SiteSent int64 `json:"siteSent"`
	// SiteBySource splits what the gateway sent by source (its counters: proxied origin bodies, its own store
	// and webseed, its seeder's piece data); with swarmgate only.
	SiteBySource map[string]int64 `json:"siteBySource,omitempty"`
	HelpersSent  int64            `json:"helpersSent"`
	PeersSent    int64            `json:"peersSent"`
	// SitePerVisitor is SiteSent over all visitors, and over the site's size.
	SitePerVisitor      float64 `json:"sitePerVisitor"`
	SitePerVisitorSites float64 `json:"sitePerVisitorSites"`
	// Shares of all bytes sent to visitors (and helpers), by sender.
	PeerShare   float64 `json:"peerShare"`
	HelperShare float64 `json:"helperShare"`
	// CrowdAfter is when the gateway declared the crowd, RecruitSeconds the time from then until DNS
	// published the first helper (-1: never; both only with swarmgate).
	CrowdAfter     float64 `json:"crowdAfter,omitempty"`
	RecruitSeconds float64 `json:"recruitSeconds,omitempty"`
	// OriginRequests counts the requests that reached the origin; PeakOriginRate is the most of them in about
	// a second (per second).
	OriginRequests int64   `json:"originRequests"`
	PeakOriginRate float64 `json:"peakOriginRate"`
	// PlainToHelpers counts plain visitors DNS sent to a helper.
	PlainToHelpers int      `json:"plainToHelpers"`
	Visits         []Visit  `json:"visits"`
	Timeline       []Sample `json:"timeline"`
}

func (r *ModeResult) summarize(siteSize int64, timeout time.Duration, tl *timeline, site netip.Addr) {
	var browser, plain []float64
	for _, v := range r.Visits {
		t := v.Seconds
		if v.Failed {
			r.Failed++
			t = timeout.Seconds()
		}
		if v.Kind == KindBrowser {
			browser = append(browser, t)
			r.PeersSent += v.Uploaded
		} else {
			plain = append(plain, t)
			if ap, err := netip.ParseAddrPort(v.Server); err == nil && !v.Failed && r.Mode == With && ap.Addr() != site {
				r.PlainToHelpers++
			}
		}
	}
	r.P50, r.P95, r.P99 = percentile(browser, 50), percentile(browser, 95), percentile(browser, 99)
	r.PlainP50, r.PlainP95 = percentile(plain, 50), percentile(plain, 95)
	if n := len(r.Visits); n > 0 {
		r.SitePerVisitor = float64(r.SiteSent) / float64(n)
		r.SitePerVisitorSites = r.SitePerVisitor / float64(siteSize)
	}
	if total := r.SiteSent + r.HelpersSent + r.PeersSent; total > 0 {
		r.PeerShare = float64(r.PeersSent) / float64(total)
		r.HelperShare = float64(r.HelpersSent) / float64(total)
	}
	if n := len(r.Timeline); n > 0 {
		r.OriginRequests = r.Timeline[n-1].OriginRequests
		for _, v := range perSecond(r.Timeline, func(s Sample) float64 { return float64(s.OriginRequests) }) {
			r.PeakOriginRate = max(r.PeakOriginRate, v)
		}
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if r.Mode == With {
		r.CrowdAfter, r.RecruitSeconds = -1, -1
		if !tl.crowdAt.IsZero() {
			r.CrowdAfter = tl.crowdAt.Sub(tl.t0).Seconds()
			if !tl.helperAt.IsZero() {
				r.RecruitSeconds = tl.helperAt.Sub(tl.crowdAt).Seconds()
			}
		}
	}
}

// percentile is the p-th percentile of xs (nearest rank); 0 for none.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Mode returns the run of mode m, if the result has one.
func (r *Result) Mode(m Mode) (*ModeResult, bool) {
	for i := range r.Runs {
		if r.Runs[i].Mode == m {
			return &r.Runs[i], true
		}
	}
	return nil, false
}

// WriteTable prints the figures side by side.
func (r *Result) WriteTable(w io.Writer) error {
	c := r.Config
	fmt.Fprintf(w, "swarmgate bench crowd: %d browsers (one every %v) and %d plain HTTP clients; site %s; uplink %.0f Mbit/s per machine\n\n",
		c.Browsers, c.Arrival, c.Plain, mb(r.SiteBytes), c.Uplink*8/1e6)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, f func(*ModeResult) string) {
		fmt.Fprintf(tw, "%s\t", name)
		for i := range r.Runs {
			fmt.Fprintf(tw, "%s\t", f(&r.Runs[i]))
		}
		fmt.Fprintln(tw)
	}
	secs := func(v float64) string { return fmt.Sprintf("%.1f s", v) }
	pct := func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }
	row("", func(run *ModeResult) string { return run.Label })
	row("browser page complete p50", func(run *ModeResult) string { return secs(run.P50) })
	row("p95", func(run *ModeResult) string { return secs(run.P95) })
	row("p99", func(run *ModeResult) string { return secs(run.P99) })
	if c.Plain > 0 {
		row("plain HTTP complete p50", func(run *ModeResult) string { return secs(run.PlainP50) })
		row("p95", func(run *ModeResult) string { return secs(run.PlainP95) })
	}
	row("failed loads", func(run *ModeResult) string { return fmt.Sprint(run.Failed) })
	row("site egress per visitor", func(run *ModeResult) string {
		return fmt.Sprintf("%s (%.2f of the site)", mb(int64(run.SitePerVisitor)), run.SitePerVisitorSites)
	})
	row("requests reaching the origin (peak/s)", func(run *ModeResult) string {
		return fmt.Sprintf("%d (%.0f/s)", run.OriginRequests, run.PeakOriginRate)
	})
	row("bytes from browser peers", func(run *ModeResult) string { return pct(run.PeerShare) })
	row("bytes from helpers", func(run *ModeResult) string { return pct(run.HelperShare) })
	row("plain clients sent to helpers", func(run *ModeResult) string {
		if run.Mode != With {
			return "-"
		}
		return fmt.Sprintf("%d of %d", run.PlainToHelpers, c.Plain)
	})
	row("crowd declared / helper in DNS", func(run *ModeResult) string {
		switch {
		case run.Mode != With:
			return "-"
		case run.CrowdAfter < 0:
			return "never"
		case run.RecruitSeconds < 0:
			return fmt.Sprintf("at %.1f s / never", run.CrowdAfter)
		}
		return fmt.Sprintf("at %.1f s / %.1f s later", run.CrowdAfter, run.RecruitSeconds)
	})
	row("run length", func(run *ModeResult) string { return secs(run.Duration) })
	if err := tw.Flush(); err != nil {
		return err
	}
	without, ok1 := r.Mode(Without)
	with, ok2 := r.Mode(With)
	if ok1 && ok2 && with.P95 > 0 {
		_, err := fmt.Fprintf(w, "\np95 page-complete time %.1fx better with swarmgate; site egress %.1fx lower\n",
			without.P95/with.P95, without.SitePerVisitor/max(with.SitePerVisitor, 1))
		return err
	}
	return nil
}
