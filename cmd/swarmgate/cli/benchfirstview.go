package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/swarmgate/swarmgate/bench/firstview"
	"github.com/swarmgate/swarmgate/gateway"
)

// benchFirstView runs `bench firstview`: see package firstview.
func benchFirstView(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench firstview", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg firstview.Config
	fs.IntVar(&cfg.Runs, "runs", firstview.DefaultRuns, "R: cold visits per mode and network")
	modes := fs.String("modes", "direct,gateway,peer", "ways to load the page: direct (the origin alone), gateway (through swarmgate, a lone visitor), peer (through swarmgate, a peer already on the page)")
	networks := fs.String("networks", "emulated,loopback", "emulated (Chromium's network emulation, see -rtt and -down) and/or loopback (none)")
	rtt := fs.Duration("rtt", firstview.Emulated80ms40Mbit.Latency, "emulated round-trip latency added to each request")
	down := fs.Float64("down", firstview.Emulated80ms40Mbit.Download/1e6, "emulated download rate in Mbit/s (HTTP and WebSockets)")
	throttleRTC := fs.Bool("throttle-webrtc", false, "apply the emulation to WebRTC too (Chromium 156 does so harshly: see package firstview)")
	fs.BoolVar(&cfg.AtLaunch, "at-launch", false, "navigate as soon as the visitor's browser answers, during its start-up, instead of once it has settled")
	fs.IntVar(&cfg.HeroSide, "hero-side", firstview.DefaultHeroSide, "hero image side in pixels (opaque noise PNG: about 3·side² bytes)")
	videoSize := fs.String("video-size", fmt.Sprintf("%dx%d", firstview.DefaultVideo.Width, firstview.DefaultVideo.Height), "video frame size, WIDTHxHEIGHT")
	fs.IntVar(&cfg.Video.Seconds, "video-seconds", firstview.DefaultVideo.Seconds, "video length")
	fs.IntVar(&cfg.Video.Kbps, "video-kbps", firstview.DefaultVideo.Kbps, "video bitrate in kbit/s (audio adds 64)")
	fs.DurationVar(&cfg.PageTimeout, "timeout", firstview.DefaultPageTimeout, "a visit whose page is not complete by then failed")
	fs.StringVar(&cfg.FFmpeg, "ffmpeg", "ffmpeg", "ffmpeg executable, to make the video (Debian: apt-get install ffmpeg)")
	fs.StringVar(&cfg.CacheDir, "cache-dir", "", "where made videos are kept for later runs (default $TMPDIR/swarmgate-bench-cache)")
	p2p := fs.String("p2p", string(gateway.P2PAlways), "the gateways' P2P policy: always (the swarm in every state: the P2P figures), auto (serve's default: a site in normal times, pages unchanged) or off")
	jsonOut := fs.Bool("json", false, "print every visit and the medians as JSON instead of a table")
	logLevel := fs.String("log-level", "error", "gateways' log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	bad := func(err error) error {
		fmt.Fprintln(stderr, "swarmgate:", err)
		return errUsage
	}
	if fs.NArg() > 0 {
		return bad(fmt.Errorf("bench firstview: unexpected argument %q", fs.Arg(0)))
	}
	if *rtt <= 0 || !(*down > 0) {
		return bad(fmt.Errorf("bench firstview: -rtt %v and -down %g must be positive", *rtt, *down))
	}
	em := firstview.Network{Name: fmt.Sprintf("%dms-%gmbit", rtt.Milliseconds(), *down), Latency: *rtt, Download: *down * 1e6,
		ThrottleWebRTC: *throttleRTC}
	if *throttleRTC {
		em.Name += "-webrtc"
	}
	var err error
	if cfg.Networks, err = firstview.ParseNetworks(*networks, em); err != nil {
		return bad(err)
	}
	if cfg.Modes, err = firstview.ParseModes(*modes); err != nil {
		return bad(err)
	}
	if _, err := fmt.Sscanf(strings.ToLower(*videoSize), "%dx%d", &cfg.Video.Width, &cfg.Video.Height); err != nil {
		return bad(fmt.Errorf("bench firstview: -video-size %q: want WIDTHxHEIGHT", *videoSize))
	}
	if err := firstview.Defaults(cfg).Validate(); err != nil {
		return bad(err)
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return bad(err)
	}
	cfg.Logger, cfg.Progress = log, stderr
	policy := gateway.P2PMode(*p2p)
	cfg.ConfigureGateway = func(gc *gateway.Config) { gc.Visitors.P2P = policy }
	if err := (&gateway.Config{DataDir: "-", Visitors: gateway.VisitorConfig{P2P: policy}}).Validate(); err != nil {
		return bad(fmt.Errorf("bench firstview: -p2p: %w", err))
	}

	start := time.Now()
	res, err := firstview.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *jsonOut {
		js, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return fmt.Errorf("bench firstview: %w", err)
		}
		if _, err := fmt.Fprintf(stdout, "%s\n", js); err != nil {
			return err
		}
	} else {
		if err := res.WriteTable(stdout); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "(%s in all)\n", time.Since(start).Round(time.Second))
	}
	if missing := res.Missing(); len(missing) > 0 {
		return fmt.Errorf("bench firstview: %w: %s", firstview.ErrMissing, strings.Join(missing, "; "))
	}
	return nil
}
