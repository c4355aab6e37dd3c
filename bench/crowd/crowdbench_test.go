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
)

// TestTinyCrowd runs the benchmark the way `swarmgate bench crowd` does, at a size that takes seconds (three
// browsers, one plain client, a small site), so that it cannot rot: both runs complete every visit with
// the right bytes, the figures add up, and the table, JSON and chart come out.
func TestTinyCrowd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium and a federation")
	}
	var progress strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{
		Browsers: 3, Plain: 2, Arrival: 500 * time.Millisecond, Images: 2, ImageSide: 400,
		PageTimeout: time.Minute, Threshold: 2, Dir: t.TempDir(), Progress: &progress,
		P2P: gateway.P2PAlways, // three browsers are over before a crowd is declared: this test is of the swarm
	})
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())

	if len(res.Runs) != 2 || res.Runs[0].Mode != Without || res.Runs[1].Mode != With {
		t.Fatalf("runs = %+v, want without then with", res.Runs)
	}
	if res.SiteBytes < 2*4*400*400 {
		t.Errorf("site is %d bytes; two 400² noise PNGs alone are more", res.SiteBytes)
	}
	for _, run := range res.Runs {
		if run.Failed != 0 {
			t.Errorf("%s: %d failed visits: %+v", run.Label, run.Failed, run.Visits)
		}
		if len(run.Visits) != 5 {
			t.Fatalf("%s: %d visits, want 5", run.Label, len(run.Visits))
		}
		for _, v := range run.Visits {
			if v.Seconds <= 0 || v.Seconds > 60 {
				t.Errorf("%s: %s visit complete in %v s", run.Label, v.Kind, v.Seconds)
			}
		}
		if !(run.P50 > 0 && run.P50 <= run.P95 && run.P95 <= run.P99) {
			t.Errorf("%s: percentiles p50 %v p95 %v p99 %v out of order", run.Label, run.P50, run.P95, run.P99)
		}
		// Every visitor took a whole site from someone: what the machines sent covers it.
		if sent := run.SiteSent + run.HelpersSent + run.PeersSent; sent < 5*res.SiteBytes*9/10 {
			t.Errorf("%s: %d bytes sent in all for 5 visitors of a %d-byte site", run.Label, sent, res.SiteBytes)
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
	// So few visitors give the swarm little to trade, and each helper takes a whole copy from the site first
	// (the benchmark's real figures come from twenty browsers): the site sends no more than without swarmgate
	// and those copies, and half a site more. That half is what a loaded machine costs: browsers trade slowly,
	// their pieces fall due and more of them come from the site's seeder and webseed (a CI run with every
	// package's tests at once went a third of a site over a tenth; run alone, the test stays under a tenth).
	if limit := without.SiteSent + 2*res.SiteBytes + res.SiteBytes/2; with.SiteSent > limit {
		t.Errorf("the site's machine sent %d bytes with swarmgate, %d without: more than two helpers' copies more",
			with.SiteSent, without.SiteSent)
	}
	// Without swarmgate every request is the origin's; with it, the gateway stores the assets (here from the
	// document root) and the origin sees the pages at most.
	if without.OriginRequests < 5*3 || without.PeakOriginRate <= 0 {
		t.Errorf("without swarmgate the origin saw %d requests (peak %.0f/s) from 5 visitors of a 3-file site",
			without.OriginRequests, without.PeakOriginRate)
	}
	if with.OriginRequests >= without.OriginRequests {
		t.Errorf("the origin saw %d requests with swarmgate, %d without", with.OriginRequests, without.OriginRequests)
	}
	if with.Timeline[len(with.Timeline)-1].State == "" {
		t.Error("with swarmgate, the timeline has no gateway state")
	}
	for _, want := range []string{"browser page complete p50", "failed loads", "requests reaching the origin", "site egress per visitor", "bytes from browser peers", "with swarmgate"} {
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
