package crowd

import (
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"sort"
	"text/tabwriter"
	"time"
)

// Result is a benchmark's figures.
type Result struct {
	Config    Config `json:"config"`
	SiteBytes int64  `json:"siteBytes"` // one visitor's worth: the page and all its files
	// VideoBytes is the video's share of SiteBytes.
	VideoBytes int64        `json:"videoBytes"`
	Runs       []ModeResult `json:"runs"`
	// Targets are issue 14's targets for a run at the defaults, and whether this one met them (those the
	// runs it has can answer).
	Targets []Target `json:"targets,omitempty"`
}

// Issue 14's targets for `bench crowd` at the defaults (N = 20 browsers, 20 Mbit/s), with swarmgate measured
// against without in the same run.
const (
	TargetSpeedup       = 8.0 // p95 page complete, without over with: at least this
	TargetFirstImageP95 = 3.0 // p95 first image visible with swarmgate, in seconds: at most this
	TargetEgress        = 0.2 // site egress per visitor with swarmgate, of the page: at most this
	TargetFailed        = 0   // failed loads with swarmgate: at most this
)

// Target is one of the targets, with what the run measured.
type Target struct {
	Name string `json:"name"`
	// Unit is how Bound and Got read: "x" (a ratio), "s", "of the page", or "" (a count).
	Unit  string  `json:"unit,omitempty"`
	Bound float64 `json:"bound"`
	// AtLeast says Got must be at least Bound; otherwise at most.
	AtLeast bool    `json:"atLeast,omitempty"`
	Got     float64 `json:"got"`
	Met     bool    `json:"met"`
}

// newTarget is a target with what the run measured, judged.
func newTarget(name, unit string, bound float64, atLeast bool, got float64) Target {
	met := got <= bound
	if atLeast {
		met = got >= bound
	}
	return Target{Name: name, Unit: unit, Bound: bound, AtLeast: atLeast, Got: got, Met: met}
}

// format writes v in the target's unit.
func (t Target) format(v float64) string {
	switch t.Unit {
	case "x":
		return fmt.Sprintf("%.1fx", v)
	case "s":
		return fmt.Sprintf("%.1f s", v)
	case "":
		return fmt.Sprintf("%g", v)
	}
	return fmt.Sprintf("%.2f %s", v, t.Unit)
}

// String is the target, what was measured and the verdict, e.g. "failed loads, with swarmgate: want ≤ 0,
// got 0: met".
func (t Target) String() string {
	op, verdict := "≤", "not met"
	if t.AtLeast {
		op = "≥"
	}
	if t.Met {
		verdict = "met"
	}
	return fmt.Sprintf("%s: want %s %s, got %s: %s", t.Name, op, t.format(t.Bound), t.format(t.Got), verdict)
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
	// Browsers' first image visible and video first frame, in seconds (Visit.FirstImage, Visit.FirstFrame); a
	// visit that never got there counts as the page timeout.
	FirstImageP50 float64 `json:"firstImageP50"`
	FirstImageP95 float64 `json:"firstImageP95"`
	FirstFrameP50 float64 `json:"firstFrameP50"`
	FirstFrameP95 float64 `json:"firstFrameP95"`
	// MetadataP50 and MetadataP95 are when browsers' videos had parsed their metadata (Visit.Video's
	// loadedmetadata; never: the page timeout): up to there a first frame waits for bytes, after it for the
	// browser's media pipeline.
	MetadataP50 float64 `json:"metadataP50"`
	MetadataP95 float64 `json:"metadataP95"`
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
	// SiteToHelpers is the part of SiteSent that went to the cooperating servers (their fetch of the site,
	// over HTTP and BitTorrent); the rest went to visitors.
	SiteToHelpers int64 `json:"siteToHelpers,omitempty"`
	HelpersSent   int64 `json:"helpersSent"`
	PeersSent     int64 `json:"peersSent"`
	// SitePerVisitor is SiteSent over all visitors, and that over the page's size (the page and all its
	// files: what one visitor needs).
	SitePerVisitor      float64 `json:"sitePerVisitor"`
	SitePerVisitorSites float64 `json:"sitePerVisitorSites"`
	// Shares of all bytes sent to visitors (and helpers), by sender.
	PeerShare   float64 `json:"peerShare"`
	HelperShare float64 `json:"helperShare"`
	// CPU is where the machine's processor time went (Linux only).
	CPU CPU `json:"cpu"`
	// CrowdAfter is when the gateway declared the crowd, RecruitSeconds the time from then until DNS
	// published the first helper (-1: never; both only with swarmgate).
	CrowdAfter     float64 `json:"crowdAfter,omitempty"`
	RecruitSeconds float64 `json:"recruitSeconds,omitempty"`
	// OriginRequests counts the requests that reached the origin; PeakOriginRate is the most of them in about
	// a second (per second).
	OriginRequests int64   `json:"originRequests"`
	PeakOriginRate float64 `json:"peakOriginRate"`
	// PlainToHelpers counts plain visitors DNS sent to a helper.
	PlainToHelpers int `json:"plainToHelpers"`
	// OffersRelayed and AnswersRelayed are the WebRTC offers the site's tracker passed on to peers and the
	// answers it passed back: a peer connection needs both (with swarmgate only).
	OffersRelayed  int64    `json:"offersRelayed,omitempty"`
	AnswersRelayed int64    `json:"answersRelayed,omitempty"`
	Visits         []Visit  `json:"visits"`
	Timeline       []Sample `json:"timeline"`
}

func (r *ModeResult) summarize(siteSize int64, timeout time.Duration, tl *timeline, site netip.Addr) {
	var browser, plain, image, frame, meta []float64
	reached := func(t float64) float64 {
		if t <= 0 {
			return timeout.Seconds()
		}
		return t
	}
	for _, v := range r.Visits {
		t := v.Seconds
		if v.Failed {
			r.Failed++
			t = timeout.Seconds()
		}
		if v.Kind == KindBrowser {
			browser = append(browser, t)
			image = append(image, reached(v.FirstImage))
			frame = append(frame, reached(v.FirstFrame))
			meta = append(meta, reached(v.Video["loadedmetadata"]))
			r.PeersSent += v.Uploaded
		} else {
			plain = append(plain, t)
			if ap, err := netip.ParseAddrPort(v.Server); err == nil && !v.Failed && r.Mode == With && ap.Addr() != site {
				r.PlainToHelpers++
			}
		}
	}
	r.P50, r.P95, r.P99 = percentile(browser, 50), percentile(browser, 95), percentile(browser, 99)
	r.FirstImageP50, r.FirstImageP95 = percentile(image, 50), percentile(image, 95)
	r.FirstFrameP50, r.FirstFrameP95 = percentile(frame, 50), percentile(frame, 95)
	r.MetadataP50, r.MetadataP95 = percentile(meta, 50), percentile(meta, 95)
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

// evaluate checks the runs against the targets: the speedup needs both runs, the rest the run with
// swarmgate.
func (r *Result) evaluate() []Target {
	with, ok := r.Mode(With)
	if !ok {
		return nil
	}
	var ts []Target
	if without, ok := r.Mode(Without); ok && with.P95 > 0 {
		ts = append(ts, newTarget("p95 page complete, without over with", "x", TargetSpeedup, true, without.P95/with.P95))
	}
	return append(ts,
		newTarget("p95 first image visible, with swarmgate", "s", TargetFirstImageP95, false, with.FirstImageP95),
		newTarget("site egress per visitor, with swarmgate", "of the page", TargetEgress, false, with.SitePerVisitorSites),
		newTarget("failed loads, with swarmgate", "", TargetFailed, false, float64(with.Failed)),
	)
}

// cores is the machine's core count as the runs measured it, 0 when they could not (no /proc).
func (r *Result) cores() int {
	for _, run := range r.Runs {
		if run.CPU.Cores > 0 {
			return run.CPU.Cores
		}
	}
	return 0
}

// WriteTable prints the figures side by side, with the ratio of without to with where both ran, and the
// targets.
func (r *Result) WriteTable(w io.Writer) error {
	c := r.Config
	fmt.Fprintf(w, "swarmgate bench crowd: %d browsers (one every %v) and %d plain HTTP clients; page %s (%d images of %d², a %d s %dx%d video of %s); uplink %.0f Mbit/s per machine\n\n",
		c.Browsers, c.Arrival, c.Plain, mb(r.SiteBytes), c.Images, c.ImageSide, c.Video.Seconds, c.Video.Width, c.Video.Height,
		mb(r.VideoBytes), c.Uplink*8/1e6)
	without, okWithout := r.Mode(Without)
	with, okWith := r.Mode(With)
	both := okWithout && okWith
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, f func(*ModeResult) string, ratio string) {
		fmt.Fprintf(tw, "%s\t", name)
		for i := range r.Runs {
			fmt.Fprintf(tw, "%s\t", f(&r.Runs[i]))
		}
		if both {
			fmt.Fprintf(tw, "%s\t", ratio)
		}
		fmt.Fprintln(tw)
	}
	// ratio is without over with, for a figure where lower is better.
	ratio := func(f func(*ModeResult) float64) string {
		if !both || f(with) <= 0 {
			return ""
		}
		return fmt.Sprintf("%.1fx", f(without)/f(with))
	}
	secs := func(v float64) string { return fmt.Sprintf("%.1f s", v) }
	timed := func(name string, f func(*ModeResult) float64) {
		row(name, func(run *ModeResult) string { return secs(f(run)) }, ratio(f))
	}
	pct := func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }
	row("", func(run *ModeResult) string { return run.Label }, "without / with")
	timed("browser page complete p50", func(run *ModeResult) float64 { return run.P50 })
	timed("p95", func(run *ModeResult) float64 { return run.P95 })
	timed("p99", func(run *ModeResult) float64 { return run.P99 })
	timed("first image visible p50", func(run *ModeResult) float64 { return run.FirstImageP50 })
	timed("p95", func(run *ModeResult) float64 { return run.FirstImageP95 })
	timed("video metadata parsed p50", func(run *ModeResult) float64 { return run.MetadataP50 })
	timed("p95", func(run *ModeResult) float64 { return run.MetadataP95 })
	timed("video first frame p50", func(run *ModeResult) float64 { return run.FirstFrameP50 })
	timed("p95", func(run *ModeResult) float64 { return run.FirstFrameP95 })
	if c.Plain > 0 {
		timed("plain HTTP complete p50", func(run *ModeResult) float64 { return run.PlainP50 })
		timed("p95", func(run *ModeResult) float64 { return run.PlainP95 })
	}
	row("failed loads", func(run *ModeResult) string { return fmt.Sprint(run.Failed) }, "")
	row("site egress per visitor", func(run *ModeResult) string {
		return fmt.Sprintf("%s (%.2f of the page)", mb(int64(run.SitePerVisitor)), run.SitePerVisitorSites)
	}, ratio(func(run *ModeResult) float64 { return run.SitePerVisitor }))
	row("of it to helpers", func(run *ModeResult) string {
		if run.Mode != With {
			return "-"
		}
		return fmt.Sprintf("%s (%.2f of the page)", mb(int64(run.SiteToHelpers)/int64(max(len(run.Visits), 1))),
			float64(run.SiteToHelpers)/float64(max(len(run.Visits), 1))/float64(r.SiteBytes))
	}, "")
	row("requests reaching the origin (peak/s)", func(run *ModeResult) string {
		return fmt.Sprintf("%d (%.0f/s)", run.OriginRequests, run.PeakOriginRate)
	}, "")
	row("bytes from browser peers", func(run *ModeResult) string { return pct(run.PeerShare) }, "")
	row("bytes from helpers", func(run *ModeResult) string { return pct(run.HelperShare) }, "")
	row("plain clients sent to helpers", func(run *ModeResult) string {
		if run.Mode != With {
			return "-"
		}
		return fmt.Sprintf("%d of %d", run.PlainToHelpers, c.Plain)
	}, "")
	row("WebRTC offers answered", func(run *ModeResult) string {
		if run.Mode != With {
			return "-"
		}
		return fmt.Sprintf("%d of %d", run.AnswersRelayed, run.OffersRelayed)
	}, "")
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
	}, "")
	row("run length", func(run *ModeResult) string { return secs(run.Duration) }, "")
	if cores := r.cores(); cores > 0 {
		row(fmt.Sprintf("machine CPU busy (%d cores)", cores), func(run *ModeResult) string { return pct(run.CPU.Busy) }, "")
		row("browsers' CPU per browser visit", func(run *ModeResult) string {
			return secs(run.CPU.Browsers / float64(max(c.Browsers, 1)))
		}, ratio(func(run *ModeResult) float64 { return run.CPU.Browsers }))
		row("servers' CPU (the benchmark's process)", func(run *ModeResult) string { return secs(run.CPU.Process) }, "")
		// No run can be shorter than the CPU it used spread over every core: where that is most of the run, the
		// times above are this machine's as much as the delivery's.
		row("all that CPU over the cores", func(run *ModeResult) string { return secs(cpuFloor(run, cores)) }, "")
		for _, g := range topThreads(r.Runs, 8) {
			perVisit := func(run *ModeResult) float64 {
				for _, th := range run.CPU.Threads {
					if th.Group == g {
						return th.Seconds / float64(max(c.Browsers, 1))
					}
				}
				return 0
			}
			row("  per visit in "+g, func(run *ModeResult) string { return secs(perVisit(run)) }, ratio(perVisit))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if both && with.P95 > 0 {
		fmt.Fprintf(w, "\np95 page-complete time %.1fx better with swarmgate; site egress %.1fx lower\n",
			without.P95/with.P95, without.SitePerVisitor/max(with.SitePerVisitor, 1))
	}
	if cores := r.cores(); cores > 0 {
		sep := "\n"
		for i := range r.Runs {
			run := &r.Runs[i]
			if floor := cpuFloor(run, cores); run.CPU.Busy >= cpuBound && floor >= cpuBound*run.Duration {
				fmt.Fprintf(w, "%s%s: CPU-bound, %s busy; the CPU it used takes %s of its %s on %d cores: its times\n"+
					"  measure this machine's processors as much as the delivery\n",
					sep, run.Label, pct(run.CPU.Busy), secs(floor), secs(run.Duration), cores)
				sep = ""
			}
		}
	}
	if len(r.Targets) == 0 {
		return nil
	}
	note := ""
	if c.Browsers != DefaultBrowsers || c.Uplink != DefaultUplink {
		note = "; this run is not at the defaults, so they do not strictly apply"
	}
	fmt.Fprintf(w, "\ntargets (issue 14, for the defaults: N = %d, %.0f Mbit/s%s):\n", DefaultBrowsers, DefaultUplink*8/1e6, note)
	for _, t := range r.Targets {
		if _, err := fmt.Fprintf(w, "  %s\n", t); err != nil {
			return err
		}
	}
	return nil
}

// topThreads names the browsers' thread groups that took the most CPU in any run, at most n, by their
// largest share.
// cpuBound is how busy a run kept the machine, and how much of its length the CPU it used takes on every core,
// for the table to say that the run was CPU-bound.
const cpuBound = 0.9

// cpuFloor is the CPU a run's browsers and servers used, spread over the machine's cores: the shortest the
// run could have been on this machine.
func cpuFloor(run *ModeResult, cores int) float64 {
	return (run.CPU.Browsers + run.CPU.Process) / float64(max(cores, 1))
}

func topThreads(runs []ModeResult, n int) []string {
	most := map[string]float64{}
	for _, run := range runs {
		for _, th := range run.CPU.Threads {
			most[th.Group] = max(most[th.Group], th.Seconds)
		}
	}
	groups := make([]string, 0, len(most))
	for g := range most {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool {
		if most[groups[i]] != most[groups[j]] {
			return most[groups[i]] > most[groups[j]]
		}
		return groups[i] < groups[j]
	})
	return groups[:min(n, len(groups))]
}
