package crowd

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"strings"
)

// Chart geometry, in SVG user units.
const (
	chartWidth  = 1010
	plotLeft    = 64
	plotRight   = 900
	panelHeight = 330
	loadTop     = 40  // within a panel: the load plot ...
	loadHeight  = 100 // ...
	bytesTop    = 165 // ... and the bytes plot under it
	bytesHeight = 130
)

// Colours of the senders, the states and the lines.
var (
	senderColours = []string{"#d9534f", "#337ab7", "#5cb85c"} // site, helpers, browser peers
	senderNames   = []string{"site's machine (origin + gateway)", "helpers", "browser peers"}
	stateColours  = map[string]string{"crowd": "#fbe3c8", "ending": "#fdf5c9"}
)

// SVG draws each run's timeline, on one time axis: visitors loading and the gateway's request rate over the
// gateway's state (normal, crowd shaded, ending lighter), and under it the bytes per second each sender
// sends, stacked.
func (r *Result) SVG() []byte {
	var b bytes.Buffer
	tmax := 1.0
	peakRate, peakActive, peakBytes := 1.0, 1, 1.0
	series := make([][3][]float64, len(r.Runs))
	originRates := make([][]float64, len(r.Runs))
	for i, run := range r.Runs {
		originRates[i] = perSecond(run.Timeline, func(s Sample) float64 { return float64(s.OriginRequests) })
		for k, s := range run.Timeline {
			tmax = math.Max(tmax, s.T)
			peakRate = math.Max(peakRate, math.Max(s.Rate, originRates[i][k]))
			peakActive = max(peakActive, s.Active)
		}
		series[i] = senderRates(run.Timeline)
		for k := range run.Timeline {
			peakBytes = math.Max(peakBytes, series[i][0][k]+series[i][1][k]+series[i][2][k])
		}
	}
	tmax = niceCeil(tmax)
	peakBytes = niceCeil(peakBytes / 1e6)
	peakLoad := niceCeil(math.Max(peakRate, float64(peakActive)))
	x := func(t float64) float64 { return plotLeft + (plotRight-plotLeft)*t/tmax }

	height := 30 + panelHeight*len(r.Runs) + 40
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui,sans-serif" font-size="12">`+"\n",
		chartWidth, height, chartWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
	c := r.Config
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", plotLeft, html.EscapeString(fmt.Sprintf(
		"swarmgate bench crowd: %d browsers (one every %v), %d plain clients, page %s (%s of it video), uplink %.0f Mbit/s per machine",
		c.Browsers, c.Arrival, c.Plain, mb(r.SiteBytes), mb(r.VideoBytes), c.Uplink*8/1e6)))
	for i, run := range r.Runs {
		top := 30 + i*panelHeight
		fmt.Fprintf(&b, `<g transform="translate(0,%d)">`+"\n", top)
		fmt.Fprintf(&b, `<text x="%d" y="22" font-size="13" font-weight="bold">%s</text>`+"\n", plotLeft, html.EscapeString(fmt.Sprintf(
			"%s: p95 page complete %.1f s, first image %.1f s, first frame %.1f s; %d failed; site egress %.2f of the page per visitor",
			run.Label, run.P95, run.FirstImageP95, run.FirstFrameP95, run.Failed, run.SitePerVisitorSites)))
		// State bands behind the load plot.
		for k := 1; k < len(run.Timeline); k++ {
			if col, ok := stateColours[run.Timeline[k].State]; ok {
				x0, x1 := x(run.Timeline[k-1].T), x(run.Timeline[k].T)
				fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x0, loadTop, x1-x0, loadHeight, col)
			}
		}
		frame(&b, loadTop, loadHeight, tmax, peakLoad, "visitors / req/s", x)
		loadY := func(v float64) float64 { return loadTop + loadHeight - loadHeight*v/peakLoad }
		active := make([]float64, len(run.Timeline))
		rate := make([]float64, len(run.Timeline))
		for k, s := range run.Timeline {
			active[k], rate[k] = float64(s.Active), s.Rate
		}
		polyline(&b, run.Timeline, active, x, loadY, "#333", "")
		polyline(&b, run.Timeline, originRates[i], x, loadY, "#d9534f", ` stroke-dasharray="2 2"`)
		if run.Mode == With {
			polyline(&b, run.Timeline, rate, x, loadY, "#8e44ad", ` stroke-dasharray="5 3"`)
			for k, s := range run.Timeline {
				if s.InDNS > 0 {
					xx := x(s.T)
					fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#337ab7" stroke-width="1.5"/>`+"\n", xx, xx, loadTop, bytesTop+bytesHeight)
					fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#337ab7">helper in DNS</text>`+"\n", xx+3, loadTop+12)
					_ = k
					break
				}
			}
		}
		// Bytes per second by sender, stacked.
		frame(&b, bytesTop, bytesHeight, tmax, peakBytes, "MB/s sent", x)
		bytesY := func(v float64) float64 { return bytesTop + bytesHeight - bytesHeight*v/1e6/peakBytes }
		base := make([]float64, len(run.Timeline))
		for sender := range 3 {
			var pts []string
			for k, s := range run.Timeline {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.T), bytesY(base[k]+series[i][sender][k])))
			}
			for k := len(run.Timeline) - 1; k >= 0; k-- {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(run.Timeline[k].T), bytesY(base[k])))
			}
			if len(run.Timeline) > 0 {
				fmt.Fprintf(&b, `<polygon points="%s" fill="%s" fill-opacity="0.85"/>`+"\n", strings.Join(pts, " "), senderColours[sender])
			}
			for k := range base {
				base[k] += series[i][sender][k]
			}
		}
		fmt.Fprintf(&b, "</g>\n")
	}
	// Legend and time axis label.
	ly := height - 16
	lx := plotLeft
	legend := func(colour, name string, line bool) {
		if line {
			fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"/>`, lx, lx+16, ly-4, ly-4, colour)
		} else {
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="16" height="10" fill="%s"/>`, lx, ly-9, colour)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", lx+20, ly, html.EscapeString(name))
		lx += 26 + 7*len(name)
	}
	legend("#333", "visitors loading", true)
	legend("#8e44ad", "gateway req/s", true)
	legend("#d9534f", "origin req/s", true)
	legend(stateColours["crowd"], "crowd", false)
	legend(stateColours["ending"], "ending", false)
	for k := range senderNames {
		legend(senderColours[k], senderNames[k], false)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">seconds</text>`+"\n", plotRight, height-30)
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// frame draws a plot's box, its value axis (0 and top) and the time ticks.
func frame(b *bytes.Buffer, top, h int, tmax, vmax float64, label string, x func(float64) float64) {
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", plotLeft, top, plotRight-plotLeft, h)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%g</text><text x="%d" y="%d" text-anchor="end">0</text>`+"\n",
		plotLeft-4, top+10, vmax, plotLeft-4, top+h)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="start" fill="#666">%s</text>`+"\n", plotRight+4, top+10, html.EscapeString(label))
	step := niceCeil(tmax / 10)
	for t := 0.0; t <= tmax+1e-9; t += step {
		xx := x(t)
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#999"/><text x="%.1f" y="%d" text-anchor="middle" fill="#666">%g</text>`+"\n",
			xx, xx, top+h, top+h+4, xx, top+h+15, t)
	}
}

func polyline(b *bytes.Buffer, tl []Sample, v []float64, x, y func(float64) float64, colour, extra string) {
	if len(tl) == 0 {
		return
	}
	var pts []string
	for k, s := range tl {
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.T), y(v[k])))
	}
	fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), colour, extra)
}

// senderRates turns the cumulative byte counts into bytes per second for the site, the helpers and the
// browser peers, averaged over about a second.
func senderRates(tl []Sample) [3][]float64 {
	return [3][]float64{
		perSecond(tl, func(s Sample) float64 { return float64(s.Site) }),
		perSecond(tl, func(s Sample) float64 { return float64(s.Helpers) }),
		perSecond(tl, func(s Sample) float64 { return float64(s.Peers) }),
	}
}

// perSecond turns a cumulative count of the timeline into a rate per second, averaged over about a second.
func perSecond(tl []Sample, value func(Sample) float64) []float64 {
	out := make([]float64, len(tl))
	for k := range tl {
		j := k
		for j > 0 && tl[k].T-tl[j].T < 1 {
			j--
		}
		if dt := tl[k].T - tl[j].T; dt > 0 {
			out[k] = math.Max(0, (value(tl[k])-value(tl[j]))/dt)
		}
	}
	return out
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
