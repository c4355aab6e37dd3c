package crowd

import (
	"context"
	"encoding/xml"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/internal/examplesite"
)

// TestTinyCrowd runs the benchmark the way `swarmgate bench crowd` does, at a size that takes seconds (three
// browsers, two plain clients, a small site with a 2-second video), so that it cannot rot: both runs complete
// every visit with the right bytes, every browser reports when its first image was on screen and when the
// video showed its first frame, the figures add up, and the table, targets, JSON and chart come out. It
// asserts no timings beyond their order.
func TestTinyCrowd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium and a federation")
	}
	var progress strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{
		Browsers: 3, Plain: 2, Arrival: 500 * time.Millisecond, Images: 2, ImageSide: 400,
		Video:       examplesite.Video{Width: 320, Height: 180, Seconds: 2, Kbps: 300},
		PageTimeout: time.Minute, Dir: t.TempDir(), CacheDir: t.TempDir(), Progress: &progress,
		// This test is of the swarm: P2P always, and no crowd declared, so no helper. Helpers' seeders and
		// webseeds (with capacity to spare, they take any piece no one is fetching) are Go on a full link, and
		// under CI's load they took every piece of so small a page before three busy browsers had one to trade
		// (browsers sent each other nothing, 2026-12-04). Without them the browsers' only other source is the
		// site's seeder, a peer of last resort: what one browser holds, the others take from it.
		P2P: gateway.P2PAlways, Threshold: 1000,
		// Outside a crowd an engine joins the swarm a second after it starts (engine.ts, SIGNAL_DELAY_MS), and
		// takes its first view from the site meanwhile: at 20 Mbit/s so small a page is complete by then, and
		// nobody would trade. At 4 Mbit/s it takes a few seconds, and the browsers that came first serve the
		// others.
		Uplink: 4e6 / 8,
	})
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
	if !strings.Contains(table.String(), "all that CPU over the cores") {
		t.Error("the table does not say how long the CPU the runs used takes on the machine's cores")
	}

	if len(res.Runs) != 2 || res.Runs[0].Mode != Without || res.Runs[1].Mode != With {
		t.Fatalf("runs = %+v, want without then with", res.Runs)
	}
	if res.VideoBytes < minVideoBytes || res.SiteBytes < 2*4*400*400+res.VideoBytes {
		t.Errorf("site is %d bytes, its video %d; two 400² noise PNGs and a video over %d bytes are more",
			res.SiteBytes, res.VideoBytes, minVideoBytes)
	}
	for _, run := range res.Runs {
		if run.Failed != 0 {
			t.Errorf("%s: %d failed visits: %+v", run.Label, run.Failed, run.Visits)
		}
		if len(run.Visits) != 5 {
			t.Fatalf("%s: %d visits, want 5", run.Label, len(run.Visits))
		}
		videosViaSwarm := 0
		for _, v := range run.Visits {
			if v.Seconds <= 0 || v.Seconds > 60 {
				t.Errorf("%s: %s visit complete in %v s", run.Label, v.Kind, v.Seconds)
			}
			// A browser's page is complete only once its first image is on screen and its video has shown a
			// frame; a plain client sees neither.
			if v.Kind == KindBrowser && !(v.FirstImage > 0 && v.FirstImage <= v.Seconds && v.FirstFrame > 0 && v.FirstFrame <= v.Seconds) {
				t.Errorf("%s: browser visit: first image at %v s, first frame at %v s, complete at %v s",
					run.Label, v.FirstImage, v.FirstFrame, v.Seconds)
			}
			// Its steps come in order: the image loaded, then decoded, then it was on screen.
			if st := v.FirstImageSteps; v.Kind == KindBrowser && !(st["load"] > 0 && st["load"] <= st["decoded"] && st["decoded"] <= v.FirstImage) {
				t.Errorf("%s: browser visit: first image loaded at %v s, decoded at %v s, on screen at %v s",
					run.Label, st["load"], st["decoded"], v.FirstImage)
			}
			if v.Kind == KindPlain && (v.FirstImage != 0 || v.FirstFrame != 0) {
				t.Errorf("%s: plain visit with a first image (%v s) or frame (%v s)", run.Label, v.FirstImage, v.FirstFrame)
			}
			if v.VideoViaSwarm {
				videosViaSwarm++
			}
			// The page's HTTP bytes, split by path, add up; without swarmgate the page itself is among them.
			var byPath int64
			for _, n := range v.HTTPFiles {
				byPath += n
			}
			if v.Kind == KindBrowser && (byPath != v.Bytes["http"] || (run.Mode == Without && v.HTTPFiles["/"] <= 0)) {
				t.Errorf("%s: browser visit's HTTP bytes %d, by path %v", run.Label, v.Bytes["http"], v.HTTPFiles)
			}
		}
		if !(run.P50 > 0 && run.P50 <= run.P95 && run.P95 <= run.P99) {
			t.Errorf("%s: percentiles p50 %v p95 %v p99 %v out of order", run.Label, run.P50, run.P95, run.P99)
		}
		if !(run.FirstImageP50 > 0 && run.FirstImageP50 <= run.FirstImageP95 && run.FirstImageP95 <= run.P95 &&
			run.FirstFrameP50 > 0 && run.FirstFrameP50 <= run.FirstFrameP95 && run.FirstFrameP95 <= run.P95 &&
			run.MetadataP50 > 0 && run.MetadataP50 <= run.FirstFrameP50 && run.MetadataP95 <= run.FirstFrameP95) {
			t.Errorf("%s: first image p50 %v p95 %v, video metadata p50 %v p95 %v, first frame p50 %v p95 %v, page complete p95 %v",
				run.Label, run.FirstImageP50, run.FirstImageP95, run.MetadataP50, run.MetadataP95, run.FirstFrameP50, run.FirstFrameP95, run.P95)
		}
		// With P2P always on, the gateway hands the video to the engine like the images; without, it is HTTP's.
		if (run.Mode == With) != (videosViaSwarm > 0) {
			t.Errorf("%s: %d browsers got the video through the swarm", run.Label, videosViaSwarm)
		}
		// Every visitor took a whole site from someone: what the machines sent covers it.
		if sent := run.SiteSent + run.HelpersSent + run.PeersSent; sent < 5*res.SiteBytes*9/10 {
			t.Errorf("%s: %d bytes sent in all for 5 visitors of a %d-byte site", run.Label, sent, res.SiteBytes)
		}
		// Browsers and servers shared the machine's processors, and /proc says how much each took.
		if c := run.CPU; c.Cores < 1 || !(c.Busy > 0 && c.Busy <= 1.05) || c.Browsers <= 0 || c.Process <= 0 ||
			c.Browsers+c.Process > 1.05*float64(c.Cores)*run.Duration {
			t.Errorf("%s: CPU %+v over %.1f s", run.Label, c, run.Duration)
		}
		// The threads split the browsers' time: the renderers' main threads ran the page, and the groups
		// add up to the processes' total (a thread read just after its process may show a tick or two more).
		var threads float64
		groups := map[string]bool{}
		for _, th := range run.CPU.Threads {
			threads += th.Seconds
			groups[th.Group] = true
		}
		if !groups["renderer main"] || !groups["browser main"] || threads < run.CPU.Browsers-0.01 || threads > 1.05*run.CPU.Browsers+0.05 {
			t.Errorf("%s: browsers' CPU %.2f s, by thread %.2f s: %+v", run.Label, run.CPU.Browsers, threads, run.CPU.Threads)
		}
		if len(run.Timeline) < 2 || run.Timeline[len(run.Timeline)-1].Done != 5 {
			t.Errorf("%s: timeline ends %+v", run.Label, run.Timeline[len(run.Timeline)-1])
		}
	}
	without, with := res.Runs[0], res.Runs[1]
	if without.PeersSent != 0 || without.HelpersSent != 0 {
		t.Errorf("without swarmgate, peers sent %d and helpers %d bytes", without.PeersSent, without.HelpersSent)
	}
	if with.PeersSent == 0 {
		t.Error("with swarmgate, browsers sent each other nothing")
	}
	if with.AnswersRelayed == 0 || with.AnswersRelayed > with.OffersRelayed {
		t.Errorf("with swarmgate, the tracker relayed %d answers to %d offers", with.AnswersRelayed, with.OffersRelayed)
	}
	if with.HelpersSent != 0 || with.CrowdAfter >= 0 {
		t.Errorf("a crowd was declared (at %v s) and helpers sent %d bytes", with.CrowdAfter, with.HelpersSent)
	}
	// So few visitors give the swarm little to trade (the benchmark's real figures come from twenty browsers):
	// the site sends no more than without swarmgate, and half a site more. That half is what a loaded machine
	// costs: browsers trade slowly, their pieces fall due and more of them come from the site's seeder and
	// webseed.
	if limit := without.SiteSent + res.SiteBytes/2; with.SiteSent > limit {
		t.Errorf("the site's machine sent %d bytes with swarmgate, %d without", with.SiteSent, without.SiteSent)
	}
	// Without swarmgate every request is the origin's; with it, the gateway stores the assets (here from the
	// document root) and the origin sees the pages at most.
	if without.OriginRequests < 5*5 || without.PeakOriginRate <= 0 {
		t.Errorf("without swarmgate the origin saw %d requests (peak %.0f/s) from 5 visitors of a page with 4 files",
			without.OriginRequests, without.PeakOriginRate)
	}
	if with.OriginRequests >= without.OriginRequests {
		t.Errorf("the origin saw %d requests with swarmgate, %d without", with.OriginRequests, without.OriginRequests)
	}
	if with.Timeline[len(with.Timeline)-1].State == "" {
		t.Error("with swarmgate, the timeline has no gateway state")
	}
	if len(res.Targets) != 4 || res.Targets[0].Got != without.P95/with.P95 || res.Targets[1].Got != with.FirstImageP95 {
		t.Errorf("targets %+v for p95 %v without, %v with, first image p95 %v with", res.Targets, without.P95, with.P95, with.FirstImageP95)
	}
	for _, want := range []string{"browser page complete p50", "first image visible p50", "video metadata parsed p50", "video first frame p50", "without / with",
		"failed loads", "requests reaching the origin", "site egress per visitor", "bytes from browser peers", "with swarmgate",
		"targets (issue 14", "not at the defaults", "machine CPU busy (", "browsers' CPU per browser visit",
		"per visit in renderer main", "WebRTC offers answered"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if !strings.Contains(progress.String(), "visitors 5/5 arrived") {
		t.Errorf("progress never showed every visitor arrived:\n%s", progress.String())
	}
	svg := res.SVG()
	d := xml.NewDecoder(strings.NewReader(string(svg)))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
	}
	for _, want := range []string{"<polygon", "<polyline", "without swarmgate", "with swarmgate", "origin req/s"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if dir := os.Getenv("SWARMGATE_ARTIFACTS"); dir != "" {
		_ = os.WriteFile(dir+"/crowd-tiny.svg", svg, 0o644)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{
		{Browsers: -1}, {Browsers: maxBrowsers + 1}, {Plain: maxPlain + 1}, {Uplink: -5}, {Images: 51},
		{ImageSide: 8}, {PageTimeout: time.Millisecond}, {Threshold: -1}, {Modes: []Mode{"sideways"}},
		{Video: examplesite.Video{Width: 321, Height: 180, Seconds: 2, Kbps: 300}},
		{Video: examplesite.Video{Width: 320, Height: 180, Seconds: 1, Kbps: 100}}, // under the swarm's minimum
	} {
		if err := Defaults(c).Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := Defaults(Config{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	for p, want := range map[float64]float64{50: 5, 95: 10, 99: 10, 10: 1} {
		if got := percentile(xs, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}

// TestTargets judges made-up runs against the targets: each bound is inclusive, the speedup is without over
// with, and a run without swarmgate's figures has no speedup to judge.
func TestTargets(t *testing.T) {
	without := ModeResult{Mode: Without, P95: 80}
	for _, tc := range []struct {
		name string
		with ModeResult
		met  []bool
	}{
		{"all met, on the bounds", ModeResult{Mode: With, P95: 10, FirstImageP95: 3, SitePerVisitorSites: 0.2}, []bool{true, true, true, true}},
		{"none met", ModeResult{Mode: With, P95: 11, FirstImageP95: 3.1, SitePerVisitorSites: 0.21, Failed: 1}, []bool{false, false, false, false}},
	} {
		r := &Result{Runs: []ModeResult{without, tc.with}}
		ts := r.evaluate()
		if len(ts) != len(tc.met) {
			t.Fatalf("%s: %d targets, want %d", tc.name, len(ts), len(tc.met))
		}
		for i, target := range ts {
			if target.Met != tc.met[i] {
				t.Errorf("%s: %s", tc.name, target)
			}
		}
		if got := ts[0].Got; got != 80/tc.with.P95 {
			t.Errorf("%s: speedup %v, want %v", tc.name, got, 80/tc.with.P95)
		}
	}
	if ts := (&Result{Runs: []ModeResult{{Mode: With, P95: 10}}}).evaluate(); len(ts) != 3 {
		t.Errorf("with swarmgate alone: %d targets, want the 3 that need no run without", len(ts))
	}
	if ts := (&Result{Runs: []ModeResult{without}}).evaluate(); len(ts) != 0 {
		t.Errorf("without swarmgate alone: %d targets, want none", len(ts))
	}
	if s := newTarget("failed loads, with swarmgate", "", TargetFailed, false, 2).String(); s != "failed loads, with swarmgate: want ≤ 0, got 2: not met" {
		t.Errorf("a target reads %q", s)
	}
}
