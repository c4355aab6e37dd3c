// Package crowd is `swarmgate bench crowd`: a flash crowd on one machine, bounded in time. A site
// whose machine has a capped uplink (a token bucket, 20 Mbit/s by default) gets N headless Chromium visitors
// arriving at a steady rate and M plain HTTP clients that resolve the site's name through its DNS. The site's
// page holds heavy noise images and a muted autoplay MP4 (made once per machine by Debian's ffmpeg). The same
// arrivals run twice: against the bare origin, and with swarmgate (the site's gateway beside the origin
// and two cooperating servers, each on a machine of its own with the same uplink). The visitors' browsers are
// running before the clock starts, and a visit is timed from the visitor's arrival. It measures each visit
// from the visitor's side (when the first image is visible, when the video shows its first frame, when the
// page is complete, failures, where the bytes came from) and each machine's egress from the servers' side,
// and writes a table (with issue 14's targets, and whether the run met them), JSON and an SVG chart.
package crowd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/internal/browsertest"
	"github.com/swarmgate/swarmgate/internal/examplesite"
	"github.com/swarmgate/swarmgate/internal/loopfed"
	"github.com/swarmgate/swarmgate/swarmapi"
	"github.com/swarmgate/swarmgate/uplink"
)

// Mode is one run's setup.
type Mode string

// The two runs: the bare origin, and the origin behind swarmgate with two cooperating servers.
const (
	Without Mode = "without"
	With    Mode = "with"
)

func (m Mode) String() string {
	if m == With {
		return "with swarmgate"
	}
	return "without swarmgate"
}

// The site's names: what DNS publishes and plain clients send in Host.
const (
	Zone = "bench.test"
	Site = "launch." + Zone
)

// Defaults for Config.
const (
	DefaultBrowsers    = 20
	DefaultArrival     = time.Second
	DefaultPlain       = 4
	DefaultUplink      = 20e6 / 8 // 20 Mbit/s
	DefaultImages      = 5
	DefaultImageSide   = 724 // about 2 MB of incompressible PNG each
	DefaultPageTimeout = 3 * time.Minute
	DefaultThreshold   = 1 // site requests (pages and assets, not /.swarm/) per second: the default arrivals make about 3
	DefaultInterval    = 250 * time.Millisecond
	DefaultBrowserNice = 10
	maxBrowsers        = 100
	maxPlain           = 500

	// minVideoBytes keeps the video above the gateway's 64 KiB swarm minimum, so that it goes through the
	// swarm like the images.
	minVideoBytes = 64 << 10
)

// DefaultVideo is about 3.2 MB: 12 s of 960×540 at 2,000 kbit/s and 64 kbit/s of audio, H.264 that no
// compression shrinks. With the five 2 MB images that makes a 13.7 MB page. Without swarmgate the 24 default
// visitors need 24 × 13.7 MB from a 20 Mbit/s uplink: about 130 s of sending, within the 3-minute page
// timeout (in two runs on this 2-core machine while other work kept its load average between 30 and 130, p95
// without swarmgate was 177 and 182 s). It plays once (no loop), so that twenty browsers on the machine's two
// cores do not decode video for the whole run.
var DefaultVideo = examplesite.Video{Width: 960, Height: 540, Seconds: 12, Kbps: 2000}

// Config configures a benchmark.
type Config struct {
	// Browsers is N, the headless Chromium visitors; one arrives every Arrival.
	Browsers int           `json:"browsers"`
	Arrival  time.Duration `json:"arrival"`
	// Plain is M, the plain HTTP visitors (no JavaScript, no P2P), spread over the same span. With swarmgate
	// each resolves the site's name through the federation's DNS and fetches from the address it gets.
	Plain int `json:"plain"`
	// Uplink is what each machine (the site's, and each helper's) can send, in bytes per second.
	Uplink float64 `json:"uplinkBytesPerSecond"`
	// Images and ImageSide make the site: a page with that many noise PNGs of ImageSide² pixels.
	Images    int `json:"images"`
	ImageSide int `json:"imageSide"`
	// Video is the muted autoplay MP4 beside the first image (default DefaultVideo).
	Video examplesite.Video `json:"video"`
	// FFmpeg is the ffmpeg executable that makes the video (default "ffmpeg" on PATH; Debian's package
	// `ffmpeg`), and CacheDir keeps the videos it made, by their parameters, across runs (default
	// $TMPDIR/swarmgate-bench-cache).
	FFmpeg   string `json:"-"`
	CacheDir string `json:"-"`
	// PageTimeout bounds each visit; a visit not complete by then failed.
	PageTimeout time.Duration `json:"pageTimeout"`
	// Threshold is the request rate (per second) at which the gateway declares a crowd.
	Threshold float64 `json:"threshold"`
	// P2P is the site gateway's P2P policy (gateway.P2PAuto by default: visitors who arrive before the crowd
	// is declared load the page from the site as they would without swarmgate).
	P2P gateway.P2PMode `json:"p2p,omitempty"`
	// Modes are the runs, in order (default Without, With).
	Modes []Mode `json:"modes"`
	// Interval is how often the timeline is sampled.
	Interval time.Duration `json:"interval"`
	// SharedBrowser runs every browser visitor in one Chromium process (each in a browser context of its
	// own) instead of one process each.
	SharedBrowser bool `json:"sharedBrowser"`
	// BrowserNice is the scheduling niceness of the visitors' browsers (default DefaultBrowserNice; negative:
	// none). The servers stand for machines of their own, and visitors' browsers for visitors' machines: on
	// one machine, twenty browsers would otherwise leave the site and its helpers too little CPU to send at
	// their uplinks' rate, which no real site suffers from its visitors' CPUs.
	BrowserNice int `json:"browserNice"`
	// Dir is scratch space (default a temporary directory, removed at the end).
	Dir string `json:"-"`
	// Logger receives the servers' logs; nil discards them.
	Logger *slog.Logger `json:"-"`
	// Progress, if set, gets a progress line, rewritten in place, while a run goes.
	Progress io.Writer `json:"-"`
}

// Defaults returns cfg with its zero fields set to the defaults.
func Defaults(cfg Config) Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.Browsers, DefaultBrowsers)
	def(&cfg.Images, DefaultImages)
	def(&cfg.ImageSide, DefaultImageSide)
	if cfg.Plain == 0 {
		cfg.Plain = DefaultPlain
	} else if cfg.Plain < 0 {
		cfg.Plain = 0
	}
	if cfg.Arrival == 0 {
		cfg.Arrival = DefaultArrival
	}
	if cfg.Uplink == 0 {
		cfg.Uplink = DefaultUplink
	}
	if cfg.PageTimeout == 0 {
		cfg.PageTimeout = DefaultPageTimeout
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultThreshold
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.BrowserNice == 0 {
		cfg.BrowserNice = DefaultBrowserNice
	} else if cfg.BrowserNice < 0 {
		cfg.BrowserNice = 0
	}
	if len(cfg.Modes) == 0 {
		cfg.Modes = []Mode{Without, With}
	}
	if cfg.Video == (examplesite.Video{}) {
		cfg.Video = DefaultVideo
	}
	if cfg.FFmpeg == "" {
		cfg.FFmpeg = "ffmpeg"
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(os.TempDir(), "swarmgate-bench-cache")
	}
	return cfg
}

// Validate reports a configuration the benchmark cannot run.
func (c Config) Validate() error {
	switch {
	case c.Browsers < 1 || c.Browsers > maxBrowsers:
		return fmt.Errorf("crowd: %d browsers; want 1 to %d", c.Browsers, maxBrowsers)
	case c.Plain < 0 || c.Plain > maxPlain:
		return fmt.Errorf("crowd: %d plain clients; want 0 to %d", c.Plain, maxPlain)
	case c.Arrival < 0:
		return fmt.Errorf("crowd: arrival interval %v is negative", c.Arrival)
	case !(c.Uplink > 0):
		return fmt.Errorf("crowd: uplink %v bytes/s is not positive", c.Uplink)
	case c.Images < 1 || c.Images > 50:
		return fmt.Errorf("crowd: %d images; want 1 to 50", c.Images)
	case c.ImageSide < 160 || c.ImageSide > 4096:
		// Under 160 pixels an image is under the gateway's 64 KiB swarm minimum: there would be no swarm.
		return fmt.Errorf("crowd: image side %d; want 160 to 4096 pixels", c.ImageSide)
	case c.PageTimeout < time.Second:
		return fmt.Errorf("crowd: page timeout %v; want at least 1s", c.PageTimeout)
	case !(c.Threshold > 0):
		return fmt.Errorf("crowd: threshold %v is not positive", c.Threshold)
	case c.Interval <= 0:
		return fmt.Errorf("crowd: sampling interval %v is not positive", c.Interval)
	case c.BrowserNice < 0 || c.BrowserNice > 19:
		return fmt.Errorf("crowd: browser niceness %d; want 0 to 19", c.BrowserNice)
	case c.Video.Width < 16 || c.Video.Height < 16 || c.Video.Width%2 != 0 || c.Video.Height%2 != 0 ||
		c.Video.Width > 3840 || c.Video.Height > 2160:
		return fmt.Errorf("crowd: video %dx%d; want even sides from 16x16 to 3840x2160", c.Video.Width, c.Video.Height)
	case c.Video.Seconds < 1 || c.Video.Seconds > 600:
		return fmt.Errorf("crowd: video of %d s; want 1 to 600", c.Video.Seconds)
	case c.Video.Kbps < 100 || c.Video.Kbps > 50000:
		return fmt.Errorf("crowd: video at %d kbit/s; want 100 to 50000", c.Video.Kbps)
	case c.Video.Size() < minVideoBytes:
		return fmt.Errorf("crowd: a video of about %d bytes is under the swarm's minimum of %d; make it longer or its bitrate higher",
			c.Video.Size(), minVideoBytes)
	}
	for _, m := range c.Modes {
		if m != With && m != Without {
			return fmt.Errorf("crowd: unknown mode %q (want %q or %q)", m, Without, With)
		}
	}
	return nil
}

// Run runs the benchmark: each mode in turn, with the same arrivals.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = Defaults(cfg)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "swarmgate-crowdbench-")
		if err != nil {
			return nil, fmt.Errorf("crowd: %w", err)
		}
		defer os.RemoveAll(d)
		cfg.Dir = d
	}
	video, err := examplesite.MP4(ctx, cfg.FFmpeg, cfg.CacheDir, cfg.Video)
	if err != nil {
		return nil, fmt.Errorf("crowd: %w", err)
	}
	s, err := writeSite(filepath.Join(cfg.Dir, "site"), cfg.Images, cfg.ImageSide, cfg.Video, video)
	if err != nil {
		return nil, err
	}
	res := &Result{Config: cfg, SiteBytes: s.size, VideoBytes: int64(len(s.files[VideoPath]))}
	for _, m := range cfg.Modes {
		r, err := runOne(ctx, cfg, m, s)
		if err != nil {
			return nil, fmt.Errorf("crowd: %s: %w", m, err)
		}
		res.Runs = append(res.Runs, r)
	}
	res.Targets = res.evaluate()
	return res, nil
}

// VideoPath is the URL path of the page's video.
const VideoPath = "/media/clip.mp4"

// site is the benchmark's web site: a page, a stylesheet, heavy images and a video.
type site struct {
	dir    string
	files  map[string][]byte // by URL path
	assets []string          // what a visitor fetches after the page: stylesheet, images and video
	size   int64             // all files' bytes: what one visitor needs
}

// writeSite writes the site under dir: a page whose first viewport (a headless browser's 800×600) holds the
// first image and, beside it, the video (read from the file video, made by examplesite.MP4), with the other
// images under them. Both heavy elements of the first view are on screen, so that a browser neither defers
// the image nor pauses the muted video as off screen.
func writeSite(dir string, images, side int, v examplesite.Video, video string) (*site, error) {
	s := &site{dir: dir, files: map[string][]byte{}}
	clip, err := os.ReadFile(video)
	if err != nil {
		return nil, fmt.Errorf("crowd: %w", err)
	}
	s.files[VideoPath] = clip
	img := func(i int) string {
		return fmt.Sprintf("<img src=\"/media/photo-%d.png\" width=\"%d\" height=\"%d\" alt=\"photo %d\">\n", i+1, side, side, i+1)
	}
	body := "<div class=\"first\">\n" + img(0) + fmt.Sprintf(
		"<video src=%q width=\"%d\" height=\"%d\" muted autoplay playsinline></video>\n</div>\n", VideoPath, v.Width, v.Height)
	for i := range images {
		p := fmt.Sprintf("/media/photo-%d.png", i+1)
		png, err := examplesite.NoisePNG(side, uint64(i+1))
		if err != nil {
			return nil, err
		}
		s.files[p] = png
		if i > 0 {
			body += img(i)
		}
	}
	s.files["/style.css"] = []byte("body{font-family:system-ui,sans-serif;margin:1rem auto;max-width:48rem}\n" +
		"h1{margin:0 0 .5rem}img{max-width:100%;height:auto;display:block;margin:1rem 0}\n" +
		".first{display:flex;gap:8px;align-items:flex-start}.first img{width:440px;margin:0}.first video{width:280px;height:auto}\n")
	s.files["/index.html"] = []byte(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Launch day</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/style.css">
<script src="/.swarm/loader.js" async></script>
</head>
<body>
<h1>Launch day</h1>
` + body + `</body>
</html>
`)
	for p, b := range s.files {
		s.size += int64(len(b))
		if p != "/index.html" {
			s.assets = append(s.assets, p)
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, fmt.Errorf("crowd: %w", err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return nil, fmt.Errorf("crowd: %w", err)
		}
	}
	slices.Sort(s.assets)
	return s, nil
}

// machines are the servers of one run and the uplinks they send through.
type machines struct {
	site    *uplink.Uplink   // the site's machine: origin, and gateway when there is one
	helpers []*uplink.Uplink // one per cooperating server
	fed     *loopfed.Federation
	front   string // the URL browsers visit
	// originRequests counts the requests that reached the origin (directly, or from the gateway).
	originRequests atomic.Int64
	resolve        func(context.Context) (netip.AddrPort, error) // a plain client's address for the site
}

// siteSent is what has left the site's machine: everything origin and gateway sent through its uplink
// (HTTP, and the seeder's peer connections).
func (m *machines) siteSent() int64 { return m.site.Sent() }

// siteToHelpers is the part of siteSent that went to the cooperating servers' addresses.
func (m *machines) siteToHelpers() int64 {
	var n int64
	for _, ip := range m.fed.IPs[1:] {
		n += m.site.SentTo(ip)
	}
	return n
}

// helpersSent is what has left the cooperating servers' machines.
func (m *machines) helpersSent() int64 {
	var n int64
	for _, u := range m.helpers {
		n += u.Sent()
	}
	return n
}

// start brings up the run's servers; they stop when ctx ends, and wait returns once they have.
func start(ctx context.Context, cfg Config, mode Mode, s *site, dir string) (m *machines, wait func(), err error) {
	m = &machines{}
	if m.site, err = uplink.New(cfg.Uplink); err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("origin: %w", err)
	}
	files := http.FileServer(http.Dir(s.dir))
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.originRequests.Add(1)
		files.ServeHTTP(w, r)
	})
	origin := &http.Server{Handler: counted, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}
	// Without swarmgate the origin faces the visitors, through the site's uplink. With it, the origin sits
	// behind the gateway on the same machine: what it sends the gateway never leaves the machine, and only
	// what the gateway sends on goes through the uplink (counting both would charge every proxied byte twice).
	var public net.Listener = ln
	if mode == Without {
		public = m.site.Listener(ln)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = origin.Serve(public)
	}()
	stopOrigin := func() {
		_ = origin.Close()
		wg.Wait()
	}
	originAddr := netip.MustParseAddrPort(ln.Addr().String())
	if mode == Without {
		m.front = "http://" + originAddr.String()
		m.resolve = func(context.Context) (netip.AddrPort, error) { return originAddr, nil }
		go func() { <-ctx.Done(); stopOrigin() }()
		return m, stopOrigin, nil
	}

	fed, err := loopfed.New(loopfed.Config{
		DNSAddr: "127.0.0.1:0", Zone: Zone, Site: Site, Origin: &url.URL{Scheme: "http", Host: originAddr.String()},
		Root: s.dir, Dir: dir, Logger: cfg.Logger, P2P: cfg.P2P,
		// The visitors come from 127.0.0.1 (browsers and plain clients bind no address), so the servers start
		// at 127.0.0.2: at the site's address the visitors were taken for it, and each helper's link favoured
		// them as it favours its fellow members, which left the second helper's fetch from the first a share
		// among the crowd's. ClientRate -1: one address stands for the whole crowd.
		FirstIP:    netip.AddrFrom4([4]byte{127, 0, 0, 2}),
		Monitor:    monitor.Config{Threshold: cfg.Threshold, Window: 5 * time.Second, EnterAfter: time.Second, ClientRate: -1},
		Federation: gateway.FederationConfig{HealthInterval: time.Second},
		Uplink: func(i int) *uplink.Uplink {
			if i == 0 {
				return m.site
			}
			u, _ := uplink.New(cfg.Uplink) // the rate was checked above
			m.helpers = append(m.helpers, u)
			return u
		},
	})
	if err != nil {
		stopOrigin()
		return nil, nil, err
	}
	m.fed = fed
	m.front = fed.URL(0)
	dnsAddr := fed.DNS.Addr()
	m.resolve = func(ctx context.Context) (netip.AddrPort, error) {
		a, err := lookup(ctx, dnsAddr, Site)
		return netip.AddrPortFrom(a, uint16(fed.Port)), err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := fed.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			cfg.Logger.Error("crowd: federation", slog.Any("err", err))
		}
	}()
	go func() { <-ctx.Done(); _ = origin.Close() }()
	if err := waitReady(ctx, m.front); err != nil {
		return nil, wg.Wait, err
	}
	return m, wg.Wait, nil
}

// waitReady waits until the gateway serves its manifest: the site's first version is built.
func waitReady(ctx context.Context, front string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front+swarmapi.PathManifest, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gateway at %s not ready: %w", front, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// runOne runs the arrivals once against mode's setup.
func runOne(ctx context.Context, cfg Config, mode Mode, s *site) (ModeResult, error) {
	dir, err := os.MkdirTemp(cfg.Dir, string(mode)+"-")
	if err != nil {
		return ModeResult{}, err
	}
	srvCtx, stopServers := context.WithCancel(ctx)
	m, waitServers, err := start(srvCtx, cfg, mode, s, dir)
	if err != nil {
		stopServers()
		if waitServers != nil {
			waitServers()
		}
		return ModeResult{}, err
	}
	defer func() { stopServers(); waitServers() }()

	// Each visitor gets a browser of its own, as real visitors have: in one shared Chromium, the browser
	// process would carry every visitor's WebRTC packets and become the bottleneck no real crowd has.
	// SharedBrowser puts them all in one (as separate browser contexts) to save memory.
	var shared context.Context
	if cfg.SharedBrowser {
		bctx, stopBrowser, err := browsertest.Launch(filepath.Join(dir, "chromium"), browsertest.Nice(cfg.BrowserNice))
		if err != nil {
			return ModeResult{}, err
		}
		defer stopBrowser()
		shared = bctx
	}
	// A visitor's browser is running before the visitor follows the link: the browsers start before the
	// clock does, since starting Chromium (about 1.7 CPU-s here) is work of the visitor's own machine, which
	// twenty starts during the run would take from the crowd on this one.
	var browsers []browserTab
	if shared == nil {
		var err error
		if browsers, err = startBrowsers(ctx, dir, cfg); err != nil {
			return ModeResult{}, err
		}
		defer func() {
			for _, b := range browsers {
				b.stop()
			}
		}()
	}
	browser := func(i int) (context.Context, func(), error) {
		if shared != nil {
			ctx, cancel := chromedp.NewContext(shared, chromedp.WithNewBrowserContext())
			return ctx, cancel, nil
		}
		return browsers[i].ctx, browsers[i].stop, nil
	}

	run := ModeResult{Mode: mode, Label: mode.String()}
	t0 := time.Now()
	tl := newTimeline(m, cfg, t0)
	cpu := startCPU()
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	sampling.Add(2)
	go func() {
		defer sampling.Done()
		tl.sample(sampleCtx, cfg.Interval, cfg.Progress, mode)
	}()
	go func() {
		defer sampling.Done()
		cpu.run(sampleCtx, time.Second)
	}()

	visits := make([]Visit, cfg.Browsers+cfg.Plain)
	pages := make([]*tab, cfg.Browsers)
	var wg sync.WaitGroup
	span := time.Duration(cfg.Browsers) * cfg.Arrival
	for i := range cfg.Browsers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !sleepUntil(ctx, t0.Add(time.Duration(i)*cfg.Arrival)) {
				visits[i] = Visit{Kind: KindBrowser, Failed: true, Error: ctx.Err().Error()}
				return
			}
			tl.arrive()
			arrived := time.Since(t0).Seconds()
			visits[i], pages[i] = visitBrowser(ctx, func() (context.Context, func(), error) { return browser(i) },
				m.front+"/", cfg.PageTimeout)
			visits[i].Arrived = arrived
			tl.leave(visits[i].Failed)
		}()
	}
	for j := range cfg.Plain {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread over the browsers' span, half an interval after the browser arriving then.
			at := t0.Add(span*time.Duration(j)/time.Duration(cfg.Plain) + cfg.Arrival/2)
			if !sleepUntil(ctx, at) {
				visits[cfg.Browsers+j] = Visit{Kind: KindPlain, Failed: true, Error: ctx.Err().Error()}
				return
			}
			tl.arrive()
			v := visitPlain(ctx, m.resolve, s, cfg.PageTimeout)
			v.Arrived = at.Sub(t0).Seconds()
			visits[cfg.Browsers+j] = v
			tl.leave(v.Failed)
		}()
	}
	wg.Wait()
	// Visitors stay on the page until the last one is done, sharing what they hold; what they uploaded is
	// read now.
	for i, p := range pages {
		if p != nil {
			visits[i].Uploaded = p.uploaded()
			p.close()
		}
	}
	stopSampling()
	sampling.Wait()
	run.CPU = cpu.result()
	if cfg.Progress != nil {
		fmt.Fprintln(cfg.Progress)
	}
	if err := ctx.Err(); err != nil {
		return ModeResult{}, err
	}
	run.Duration = time.Since(t0).Seconds()
	run.Visits = visits
	run.Timeline = tl.samples()
	run.SiteSent = m.siteSent()
	if m.fed != nil {
		run.HelpersSent = m.helpersSent()
		run.SiteToHelpers = m.siteToHelpers()
		run.SiteBySource = m.fed.Servers[0].Bytes()
		delete(run.SiteBySource, gateway.SourcePeers) // not the site's bytes
		st := m.fed.Servers[0].Tracker().Stats()
		run.OffersRelayed, run.AnswersRelayed = st.OffersRelayed, st.AnswersRelayed
	}
	var siteIP netip.Addr
	if m.fed != nil {
		siteIP = m.fed.IPs[0]
	}
	run.summarize(s.size, cfg.PageTimeout, tl, siteIP)
	return run, nil
}

// browserTab is a running visitor's browser: the context of its first tab, and what stops it.
type browserTab struct {
	ctx  context.Context
	stop func()
}

// launchers is how many browsers start at once: the machine's two cores are busy with two.
const launchers = 2

// startBrowsers starts a browser for each visitor, a few at a time, telling cfg.Progress how far it is.
func startBrowsers(ctx context.Context, dir string, cfg Config) ([]browserTab, error) {
	tabs := make([]browserTab, cfg.Browsers)
	errs := make([]error, cfg.Browsers)
	next := make(chan int)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		started int
	)
	for range launchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				bctx, stop, err := browsertest.Launch(filepath.Join(dir, fmt.Sprintf("chromium-%d", i)),
					browsertest.Nice(cfg.BrowserNice))
				tabs[i], errs[i] = browserTab{bctx, stop}, err
				mu.Lock()
				started++
				if cfg.Progress != nil {
					fmt.Fprintf(cfg.Progress, "\rstarting the visitors' browsers: %d of %d", started, cfg.Browsers)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range cfg.Browsers {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if cfg.Progress != nil {
		fmt.Fprintln(cfg.Progress)
	}
	err := ctx.Err()
	for _, e := range errs {
		err = errors.Join(err, e)
	}
	if err != nil {
		for _, t := range tabs {
			if t.stop != nil {
				t.stop()
			}
		}
		return nil, fmt.Errorf("starting browsers: %w", err)
	}
	return tabs, nil
}

// sleepUntil waits for t or ctx, and says whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
