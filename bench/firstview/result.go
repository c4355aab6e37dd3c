package firstview

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// Result is a benchmark's figures: every visit, and medians per network and mode.
type Result struct {
	Config     Config `json:"config"`
	HeroBytes  int64  `json:"heroBytes"`
	VideoBytes int64  `json:"videoBytes"`
	// Networks follow Config.Networks, each with Config.Modes in order.
	Networks []NetworkResult `json:"networks"`
}

// NetworkResult is one network's runs.
type NetworkResult struct {
	Network Network      `json:"network"`
	Modes   []ModeResult `json:"modes"`
}

// ModeResult is one mode's runs on one network.
type ModeResult struct {
	Mode   Mode    `json:"mode"`
	Label  string  `json:"label"`
	Visits []Visit `json:"visits"`
	Failed int     `json:"failed"`
	// Median is over the visits that produced the figure; Ratio is Median over the direct mode's median on
	// the same network (absent without a direct mode).
	Median Figures  `json:"median"`
	Ratio  *Figures `json:"ratioToDirect,omitempty"`
}

// Figures are a visit's headline figures: times in milliseconds, bytes by source.
type Figures struct {
	HeroMs       float64 `json:"heroMs"`
	MetadataMs   float64 `json:"metadataMs,omitempty"`
	FrameMs      float64 `json:"frameMs"`
	CompleteMs   float64 `json:"completeMs"`
	OriginBytes  float64 `json:"originBytes"`
	GatewayBytes float64 `json:"gatewayBytes"`
	PeerBytes    float64 `json:"peerBytes"`
	// WebRTCBytes and WebseedBytes are what the page's engine got over WebRTC (from peers and the gateway's
	// seeder) and from webseeds over HTTP.
	WebRTCBytes  float64 `json:"webrtcBytes"`
	WebseedBytes float64 `json:"webseedBytes"`
	// WholeWebRTCBytes and WholeWebseedBytes are the same once the engine had the whole page (Visit.Whole).
	WholeWebRTCBytes  float64 `json:"wholeWebrtcBytes,omitempty"`
	WholeWebseedBytes float64 `json:"wholeWebseedBytes,omitempty"`
	// The visits' CPU (Visit.CPU), in milliseconds, and the machine's busy fraction; 0 where not measured.
	VisitorCPUMs float64 `json:"visitorCpuMs,omitempty"`
	PeerCPUMs    float64 `json:"peerCpuMs,omitempty"`
	ServersCPUMs float64 `json:"serversCpuMs,omitempty"`
	Busy         float64 `json:"busy,omitempty"`
}

func newResult(cfg Config, s *site) *Result {
	r := &Result{Config: cfg, HeroBytes: s.heroBytes, VideoBytes: s.videoBytes}
	for _, n := range cfg.Networks {
		nr := NetworkResult{Network: n}
		for _, m := range cfg.Modes {
			nr.Modes = append(nr.Modes, ModeResult{Mode: m, Label: m.Label()})
		}
		r.Networks = append(r.Networks, nr)
	}
	return r
}

// summarize fills in failures, medians and ratios.
func (r *Result) summarize() {
	for ni := range r.Networks {
		nr := &r.Networks[ni]
		var direct *Figures
		for mi := range nr.Modes {
			mr := &nr.Modes[mi]
			mr.Failed = 0
			for _, v := range mr.Visits {
				if v.Error != "" {
					mr.Failed++
				}
			}
			times := func(f func(Visit) float64) float64 { return median(mr.Visits, f, false) }
			bytes := func(src string) float64 {
				return median(mr.Visits, func(v Visit) float64 { return float64(v.Bytes[src]) }, true)
			}
			cpu := func(f func(*CPU) float64) float64 {
				return median(mr.Visits, func(v Visit) float64 {
					if v.CPU == nil {
						return 0
					}
					return f(v.CPU)
				}, false)
			}
			mr.Median = Figures{
				HeroMs:      times(func(v Visit) float64 { return v.HeroMs }),
				FrameMs:     times(func(v Visit) float64 { return v.FrameMs }),
				MetadataMs:  times(func(v Visit) float64 { return v.MetadataMs }),
				CompleteMs:  times(func(v Visit) float64 { return v.CompleteMs }),
				OriginBytes: bytes(BytesOrigin), GatewayBytes: bytes(BytesGateway), PeerBytes: bytes(BytesPeers),
				WebseedBytes: bytes(BytesWebseed),
				WebRTCBytes: median(mr.Visits, func(v Visit) float64 {
					return float64(v.Bytes[BytesPeers] + v.Bytes[BytesSeeder])
				}, true),
				WholeWebRTCBytes: median(mr.Visits, func(v Visit) float64 {
					return float64(v.Whole[BytesPeers] + v.Whole[BytesSeeder])
				}, true),
				WholeWebseedBytes: median(mr.Visits, func(v Visit) float64 { return float64(v.Whole[BytesWebseed]) }, true),
				VisitorCPUMs:      cpu(func(c *CPU) float64 { return c.Visitor }),
				PeerCPUMs:         cpu(func(c *CPU) float64 { return c.Peer }),
				ServersCPUMs:      cpu(func(c *CPU) float64 { return c.Servers }),
				Busy:              cpu(func(c *CPU) float64 { return c.Busy }),
			}
			if mr.Mode == Direct {
				direct = &mr.Median
			}
		}
		if direct == nil {
			continue
		}
		for mi := range nr.Modes {
			mr := &nr.Modes[mi]
			ratio := func(a, b float64) float64 {
				if b <= 0 {
					return 0
				}
				return a / b
			}
			mr.Ratio = &Figures{
				HeroMs: ratio(mr.Median.HeroMs, direct.HeroMs), FrameMs: ratio(mr.Median.FrameMs, direct.FrameMs),
				CompleteMs: ratio(mr.Median.CompleteMs, direct.CompleteMs), MetadataMs: ratio(mr.Median.MetadataMs, direct.MetadataMs),
			}
		}
	}
}

// median is the median of f over the visits without an error; times count only where they happened (>0),
// byte counts (zero allowed) wherever the visit succeeded. 0 when there is none.
func median(visits []Visit, f func(Visit) float64, zeroOK bool) float64 {
	var xs []float64
	for _, v := range visits {
		if v.Error != "" {
			continue
		}
		if x := f(v); x > 0 || zeroOK {
			xs = append(xs, x)
		}
	}
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

// Missing lists the figures a run failed to produce: every visit of every mode on every network must have
// its four times and byte counts. Empty when all are there.
func (r *Result) Missing() []string {
	var out []string
	for _, nr := range r.Networks {
		for _, mr := range nr.Modes {
			where := fmt.Sprintf("%s, %s", nr.Network.Name, mr.Mode)
			if len(mr.Visits) != r.Config.Runs {
				out = append(out, fmt.Sprintf("%s: %d visits of %d", where, len(mr.Visits), r.Config.Runs))
			}
			for i, v := range mr.Visits {
				at := fmt.Sprintf("%s, run %d", where, i+1)
				if v.Error != "" {
					out = append(out, fmt.Sprintf("%s: %s", at, v.Error))
					continue
				}
				for name, x := range map[string]float64{"hero image on screen": v.HeroMs, "video metadata": v.MetadataMs,
					"video first frame": v.FrameMs, "page complete": v.CompleteMs} {
					if !(x > 0) {
						out = append(out, fmt.Sprintf("%s: no %s", at, name))
					}
				}
				for _, src := range []string{BytesOrigin, BytesGateway, BytesPeers} {
					if _, ok := v.Bytes[src]; !ok {
						out = append(out, fmt.Sprintf("%s: no bytes from %s", at, src))
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// Caveats are printed under the table: what the figures do not show.
func (r *Result) Caveats() []string {
	var out []string
	for _, nr := range r.Networks {
		if nr.Network.Emulated() && !nr.Network.ThrottleWebRTC {
			out = append(out, "The emulation throttles HTTP and WebSockets, not WebRTC: bytes from peers and the gateway's seeder arrive at loopback speed, which favours swarmgate.")
			break
		}
	}
	for _, nr := range r.Networks {
		if nr.Network.Emulated() {
			out = append(out, "Emulated: the visitor's tab (its documents' requests, those its service worker lets through to the network included) and each service worker of its browser (the worker's own fetches: swarmgate's manifest, files it does not serve from the swarm, the rest of a file by Range) from the moment its conditions are set; \"lag\" is the longest a worker ran before that, \"early requests\" what workers fetched in that time (by their Resource Timing; the JSON lists them). Chromium's emulation does not reach a dedicated worker's requests, where swarmgate's engine runs: its webseed requests, webseed polls and tracker WebSocket get the same latency and rate at the server instead (a budget of their own beside the tab's; what the tracker sends is delayed by the latency). Not emulated: a worker's main script fetch (swarmgate's sw.js), which the browser makes before the worker's target exists, and the peer's browser.")
			break
		}
	}
	for _, nr := range r.Networks {
		if nr.Network.ThrottleWebRTC {
			out = append(out, "Chromium throttles WebRTC far below the emulated rate (4 MB over a data channel at 80 ms: 52 s): it disfavours swarmgate's peers and seeder.")
			break
		}
	}
	if r.Config.AtLaunch {
		out = append(out, "The visitor's browser was navigated as soon as it answered (-at-launch), while it was still starting up: every mode shared the processors with that start-up.")
	} else {
		out = append(out, fmt.Sprintf("The visitor's browser settled after its launch (until it used under %v of CPU in %v) before the navigation; its profile and HTTP cache were still cold.", settleIdle, settleWindow))
	}
	return append(out,
		"Each visit is a cold browser (fresh Chromium process and profile) and, with swarmgate, a fresh gateway; times are from navigation start, measured in the page.",
		"One machine runs origin, gateway and browsers: on a small shared machine the figures are noisy. Compare medians of several runs, and ratios more than absolute times.")
}

// WriteTable prints the medians side by side, with their ratio to direct, one block per network.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "first view: hero image %.0f KB, video %.1f MB (moov first); median of %d cold visits each\n",
		float64(r.HeroBytes)/1e3, float64(r.VideoBytes)/1e6, r.Config.Runs)
	for _, nr := range r.Networks {
		fmt.Fprintf(tw, "\n%s\n  \t", nr.Network)
		for _, mr := range nr.Modes {
			fmt.Fprintf(tw, "%s\t", mr.Label)
		}
		fmt.Fprintln(tw)
		row := func(name string, f func(ModeResult) string) {
			fmt.Fprintf(tw, "  %s\t", name)
			for _, mr := range nr.Modes {
				fmt.Fprintf(tw, "%s\t", f(mr))
			}
			fmt.Fprintln(tw)
		}
		timeRow := func(name string, med func(Figures) float64) {
			row(name, func(mr ModeResult) string {
				m := med(mr.Median)
				if m <= 0 {
					return "-"
				}
				s := fmt.Sprintf("%s ms", thousands(m))
				if mr.Ratio != nil && mr.Mode != Direct && med(*mr.Ratio) > 0 {
					s += fmt.Sprintf(" (%.1fx)", med(*mr.Ratio))
				}
				return s
			})
		}
		timeRow("hero image on screen", func(f Figures) float64 { return f.HeroMs })
		timeRow("video metadata parsed", func(f Figures) float64 { return f.MetadataMs })
		timeRow("video first frame", func(f Figures) float64 { return f.FrameMs })
		timeRow("page complete", func(f Figures) float64 { return f.CompleteMs })
		row("MB from origin / gateway / peers", func(mr ModeResult) string {
			return fmt.Sprintf("%.2f / %.2f / %.2f", mr.Median.OriginBytes/1e6, mr.Median.GatewayBytes/1e6, mr.Median.PeerBytes/1e6)
		})
		row("engine's MB over WebRTC / webseed", func(mr ModeResult) string {
			if mr.Mode == Direct {
				return "-"
			}
			return fmt.Sprintf("%.2f / %.2f", mr.Median.WebRTCBytes/1e6, mr.Median.WebseedBytes/1e6)
		})
		row("the same, once it had the whole page", func(mr ModeResult) string {
			if mr.Mode == Direct {
				return "-"
			}
			return fmt.Sprintf("%.2f / %.2f", mr.Median.WholeWebRTCBytes/1e6, mr.Median.WholeWebseedBytes/1e6)
		})
		if mr := nr.Modes; len(mr) > 0 && mr[0].Median.VisitorCPUMs > 0 {
			row("CPU ms: visitor's browser / peer's / servers", func(mr ModeResult) string {
				peer := "-"
				if mr.Mode == Peer {
					peer = thousands(mr.Median.PeerCPUMs)
				}
				return fmt.Sprintf("%s / %s / %s", thousands(mr.Median.VisitorCPUMs), peer, thousands(mr.Median.ServersCPUMs))
			})
			row("machine CPU busy (all cores)", func(mr ModeResult) string { return fmt.Sprintf("%.0f%%", 100*mr.Median.Busy) })
		}
		if nr.Network.Emulated() {
			row("service workers emulated (lag, early requests)", workersEmulated)
			row("engine's requests emulated at the server", func(mr ModeResult) string {
				n := 0
				for _, v := range mr.Visits {
					n += v.EngineEmulated
				}
				return fmt.Sprint(n)
			})
		}
		row("failed visits", func(mr ModeResult) string { return fmt.Sprintf("%d of %d", mr.Failed, len(mr.Visits)) })
	}
	fmt.Fprintln(tw)
	for _, c := range r.Caveats() {
		fmt.Fprintf(tw, "note: %s\n", c)
	}
	return tw.Flush()
}

// workersEmulated says, for the table, how many service worker targets got the network's conditions in a
// mode's visits (the fewest and the most of one visit), the longest time one of them ran without, and how
// many requests workers made in that time, all visits together.
func workersEmulated(mr ModeResult) string {
	lo, hi, lag, early := -1, 0, 0.0, 0
	for _, v := range mr.Visits {
		early += len(v.WorkerEarly)
		if lo < 0 || v.EmulatedWorkers < lo {
			lo = v.EmulatedWorkers
		}
		hi, lag = max(hi, v.EmulatedWorkers), max(lag, v.WorkerLagMs)
	}
	if hi == 0 {
		return "0"
	}
	n := fmt.Sprint(hi)
	if lo != hi {
		n = fmt.Sprintf("%d-%d", lo, hi)
	}
	return fmt.Sprintf("%s (%s ms, %d)", n, thousands(lag), early)
}

// thousands formats a millisecond figure as a whole number with thousands separators.
func thousands(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
