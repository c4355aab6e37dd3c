// Package firstview is `swarmgate bench firstview`: what swarmgate costs one visitor's first view of a page.
// A page with a hero image and a muted autoplay MP4 loads in a cold browser (a fresh Chromium process and
// profile each time) three ways: straight from the origin (a plain Go file server on loopback), through a
// swarmgate gateway in front of that origin as a lone visitor, and through the gateway while a peer (another
// Chromium) already has the page open. Each way runs under Chromium's network emulation (80 ms RTT, 40 Mbit/s
// down) and without it, R times; the emulation covers the visitor's tab and each service worker of its
// browser (see emulateWorkers). The page itself measures when the hero image is on screen, when the video
// shows its first frame and when the page is complete; the servers and the engine say where the bytes came
// from. It prints medians side by side with their ratio to direct, or JSON.
package firstview

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/swarmgate/swarmgate/gateway"
)

// Mode is one way of loading the page.
type Mode string

// The three ways.
const (
	Direct  Mode = "direct"  // from the origin alone
	Gateway Mode = "gateway" // through a swarmgate gateway, a lone visitor
	Peer    Mode = "peer"    // through the gateway, another browser already on the page
)

// Modes are all modes, in the order the table shows them.
var Modes = []Mode{Direct, Gateway, Peer}

// Label is how the table heads the mode's column.
func (m Mode) Label() string {
	switch m {
	case Gateway:
		return "swarmgate, lone visitor"
	case Peer:
		return "swarmgate, peer on page"
	}
	return "direct (origin)"
}

// Network is the network a measured visitor's browser emulates (Chromium's CDP network emulation). The zero
// Network is no emulation: loopback as it is.
type Network struct {
	Name string `json:"name"`
	// Latency is added to each HTTP request and WebSocket (Chromium applies it once per request: an RTT).
	Latency time.Duration `json:"latency"`
	// Download caps what the page receives over HTTP and WebSockets, in bits per second; 0: no cap.
	Download float64 `json:"downloadBitsPerSecond"`
	// ThrottleWebRTC applies the conditions to the page's WebRTC connections too. By default they apply to
	// http(s) and ws(s) URLs only, which is what issue 14 measured with: Chromium 156 applies conditions that
	// match every request to WebRTC as well (the deprecated Network.emulateNetworkConditions does so too),
	// and harshly: 4 MB over a data channel between two peers in one page took 52 s at 80 ms latency, against
	// 1 to 3.5 s without emulation and 2.6 s with these rules.
	ThrottleWebRTC bool `json:"throttleWebRTC,omitempty"`
}

// Emulated reports whether the network is emulated at all.
func (n Network) Emulated() bool { return n.Latency > 0 || n.Download > 0 }

// String describes the network for the table.
func (n Network) String() string {
	if !n.Emulated() {
		return "loopback, no emulation"
	}
	what := "HTTP and WebSockets; WebRTC and upload not throttled"
	if n.ThrottleWebRTC {
		what = "HTTP, WebSockets and WebRTC; upload not throttled"
	}
	return fmt.Sprintf("emulated: %v RTT, %g Mbit/s down (%s)", n.Latency, n.Download/1e6, what)
}

// The two networks the benchmark runs by default. Emulated80ms40Mbit is the network issue 14's table was
// measured on.
var (
	Emulated80ms40Mbit = Network{Name: "80ms-40mbit", Latency: 80 * time.Millisecond, Download: 40e6}
	Loopback           = Network{Name: "loopback"}
)

// Video describes the MP4 the benchmark makes with ffmpeg: testsrc2 at a fixed bitrate, H.264 and AAC, moov
// first (-movflags +faststart), so that the same parameters always make the same file.
type Video struct {
	Width   int `json:"width"`
	Height  int `json:"height"`
	Seconds int `json:"seconds"`
	// Kbps is the video bitrate in kbit/s; the audio adds 64 kbit/s.
	Kbps int `json:"kbps"`
}

// Defaults for Config.
const (
	DefaultRuns = 5
	// DefaultHeroSide makes an opaque noise PNG of about 3·473² = 671 KB: issue 14's 670 KB hero image.
	DefaultHeroSide    = 473
	DefaultPageTimeout = 90 * time.Second
	// minHeroSide keeps the hero image above the gateway's 64 KiB swarm minimum (3·148² = 65,712 bytes), so
	// that it goes through the swarm like a real hero image.
	minHeroSide = 150
	maxRuns     = 100
)

// DefaultVideo is about 7.6 MB: 24 s of 720p at 2,400 kbit/s and 64 kbit/s of audio, issue 14's 7.7 MB video.
var DefaultVideo = Video{Width: 1280, Height: 720, Seconds: 24, Kbps: 2400}

// Config configures a benchmark.
type Config struct {
	// Runs is R: how many times each mode runs on each network (default 5).
	Runs int `json:"runs"`
	// Networks are the networks each mode runs on (default Emulated80ms40Mbit, then Loopback).
	Networks []Network `json:"networks"`
	// Modes are the ways to load the page (default all three, in the order of Modes).
	Modes []Mode `json:"modes"`
	// HeroSide is the hero image's side in pixels (an opaque noise PNG of about 3·side² bytes).
	HeroSide int `json:"heroSide"`
	// Video is the MP4 the page autoplays (default DefaultVideo).
	Video Video `json:"video"`
	// PageTimeout bounds each visit: a page not complete by then failed.
	PageTimeout time.Duration `json:"pageTimeout"`
	// AtLaunch navigates the visitor's tab as soon as its browser answers, without waiting for the browser to
	// settle (see settle): the measurement before 2026-12-04, kept for comparison.
	AtLaunch bool `json:"atLaunch,omitempty"`
	// FFmpeg is the ffmpeg executable (default "ffmpeg" on PATH; Debian's package `ffmpeg`).
	FFmpeg string `json:"-"`
	// CacheDir keeps the videos ffmpeg made, by their parameters, across runs (default
	// $TMPDIR/swarmgate-bench-cache).
	CacheDir string `json:"-"`
	// Dir is scratch space (default a temporary directory, removed at the end).
	Dir string `json:"-"`
	// ConfigureGateway, if set, adjusts each gateway's configuration before it starts (after the benchmark
	// has filled in origin, root, listener and data directory). Settings of the gateway the benchmark has no
	// flag of its own for, such as a P2P policy, pass through here.
	ConfigureGateway func(*gateway.Config) `json:"-"`
	// Logger receives the gateways' logs; nil discards them.
	Logger *slog.Logger `json:"-"`
	// Progress, if set, gets a line per visit.
	Progress io.Writer `json:"-"`
}

// Defaults returns cfg with its zero fields set to the defaults.
func Defaults(cfg Config) Config {
	if cfg.Runs == 0 {
		cfg.Runs = DefaultRuns
	}
	if len(cfg.Networks) == 0 {
		cfg.Networks = []Network{Emulated80ms40Mbit, Loopback}
	}
	if len(cfg.Modes) == 0 {
		cfg.Modes = Modes
	}
	if cfg.HeroSide == 0 {
		cfg.HeroSide = DefaultHeroSide
	}
	if cfg.Video == (Video{}) {
		cfg.Video = DefaultVideo
	}
	if cfg.PageTimeout == 0 {
		cfg.PageTimeout = DefaultPageTimeout
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
	case c.Runs < 1 || c.Runs > maxRuns:
		return fmt.Errorf("%w: %d runs; want 1 to %d", ErrConfig, c.Runs, maxRuns)
	case c.HeroSide < minHeroSide || c.HeroSide > 4096:
		return fmt.Errorf("%w: hero side %d; want %d to 4096 pixels", ErrConfig, c.HeroSide, minHeroSide)
	case c.Video.Width < 16 || c.Video.Height < 16 || c.Video.Width%2 != 0 || c.Video.Height%2 != 0 ||
		c.Video.Width > 3840 || c.Video.Height > 2160:
		return fmt.Errorf("%w: video %dx%d; want even sides from 16x16 to 3840x2160", ErrConfig, c.Video.Width, c.Video.Height)
	case c.Video.Seconds < 1 || c.Video.Seconds > 600:
		return fmt.Errorf("%w: video of %d s; want 1 to 600", ErrConfig, c.Video.Seconds)
	case c.Video.Kbps < 100 || c.Video.Kbps > 50000:
		return fmt.Errorf("%w: video at %d kbit/s; want 100 to 50000", ErrConfig, c.Video.Kbps)
	case c.PageTimeout < time.Second:
		return fmt.Errorf("%w: page timeout %v; want at least 1s", ErrConfig, c.PageTimeout)
	}
	seen := map[Mode]bool{}
	for _, m := range c.Modes {
		if m != Direct && m != Gateway && m != Peer {
			return fmt.Errorf("%w: unknown mode %q (want %s, %s or %s)", ErrConfig, m, Direct, Gateway, Peer)
		}
		if seen[m] {
			return fmt.Errorf("%w: mode %q given twice", ErrConfig, m)
		}
		seen[m] = true
	}
	names := map[string]bool{}
	for _, n := range c.Networks {
		if n.Latency < 0 || n.Download < 0 {
			return fmt.Errorf("%w: network %q has a negative latency or rate", ErrConfig, n.Name)
		}
		if names[n.Name] {
			return fmt.Errorf("%w: network %q given twice", ErrConfig, n.Name)
		}
		names[n.Name] = true
	}
	return nil
}

// Run runs the benchmark. The runs interleave: each repetition loads the page every way on every network in
// turn, so that a slow spell of a shared machine falls on all modes alike rather than on one.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = Defaults(cfg)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "swarmgate-firstview-")
		if err != nil {
			return nil, fmt.Errorf("firstview: %w", err)
		}
		defer os.RemoveAll(d)
		cfg.Dir = d
	}
	s, err := makeSite(ctx, cfg)
	if err != nil {
		return nil, err
	}
	origin, err := startOrigin(s.dir, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer origin.close()

	res := newResult(cfg, s)
	visits := len(cfg.Networks) * len(cfg.Modes) * cfg.Runs
	done := 0
	for r := range cfg.Runs {
		for ni, n := range cfg.Networks {
			for mi, m := range cfg.Modes {
				v := visit(ctx, cfg, s, origin, m, n, filepath.Join(cfg.Dir, fmt.Sprintf("run-%d-%s-%s", r, n.Name, m)))
				if err := ctx.Err(); err != nil {
					return nil, fmt.Errorf("firstview: %w", err)
				}
				res.Networks[ni].Modes[mi].Visits = append(res.Networks[ni].Modes[mi].Visits, v)
				done++
				if cfg.Progress != nil {
					fmt.Fprintf(cfg.Progress, "%d/%d %s, %s: %s\n", done, visits, n.Name, m, v.summary())
				}
			}
		}
	}
	res.summarize()
	return res, nil
}
