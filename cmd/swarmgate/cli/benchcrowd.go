package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	crowd "github.com/swarmgate/swarmgate/bench/crowd"
	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/uplink"
)

// benchCrowd runs `bench crowd`: see package crowd.
func benchCrowd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench crowd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg crowd.Config
	fs.IntVar(&cfg.Browsers, "browsers", crowd.DefaultBrowsers, "N: headless Chromium visitors")
	fs.DurationVar(&cfg.Arrival, "arrival", crowd.DefaultArrival, "time between browser arrivals")
	fs.IntVar(&cfg.Plain, "plain", crowd.DefaultPlain, "M: plain HTTP visitors (no scripts, no P2P), resolving the site through its DNS")
	rate := fs.String("uplink", "20Mbit", "what each machine (the site's, each helper's) can send per second")
	fs.IntVar(&cfg.Images, "images", crowd.DefaultImages, "heavy images on the site's page")
	fs.IntVar(&cfg.ImageSide, "image-side", crowd.DefaultImageSide, "their side in pixels (noise PNG: about 4·side² bytes)")
	cfg.Video = crowd.DefaultVideo
	fs.IntVar(&cfg.Video.Seconds, "video-seconds", crowd.DefaultVideo.Seconds, fmt.Sprintf("length of the page's muted autoplay MP4 (%dx%d, made once by ffmpeg)", crowd.DefaultVideo.Width, crowd.DefaultVideo.Height))
	fs.IntVar(&cfg.Video.Kbps, "video-kbps", crowd.DefaultVideo.Kbps, "its video bitrate in kbit/s (the audio adds 64)")
	fs.DurationVar(&cfg.PageTimeout, "timeout", crowd.DefaultPageTimeout, "a visit not complete by then failed")
	fs.Float64Var(&cfg.Threshold, "threshold", crowd.DefaultThreshold, "requests per second at which the gateway declares a crowd")
	fs.Func("p2p", "the site gateway's P2P policy: auto (default: pages go to the swarm once the crowd is declared), always or off", func(v string) error {
		switch m := gateway.P2PMode(v); m {
		case gateway.P2PAuto, gateway.P2PAlways, gateway.P2POff:
			cfg.P2P = m
			return nil
		}
		return fmt.Errorf("want auto, always or off")
	})
	fs.BoolVar(&cfg.SharedBrowser, "shared-browser", false, "run every browser visitor in one Chromium process (less memory; its browser process then carries all WebRTC traffic)")
	fs.IntVar(&cfg.BrowserNice, "browser-nice", crowd.DefaultBrowserNice, "scheduling niceness of the browsers (0 to 19; -1: none), so that the servers, which stand for machines of their own, get the CPU they need")
	modes := fs.String("modes", "without,with", "runs, in order: without (the bare origin), with (swarmgate and two helpers)")
	out := fs.String("out", ".", "directory for crowd.json and crowd.svg")
	jsonOut := fs.Bool("json", false, "print the figures as JSON instead of a table")
	logLevel := fs.String("log-level", "error", "servers' log level: debug, info, warn, error")
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
		return bad(fmt.Errorf("bench crowd: unexpected argument %q", fs.Arg(0)))
	}
	r, err := uplink.ParseRate(*rate)
	if err != nil {
		return bad(err)
	}
	cfg.Uplink = r
	if *modes == "" {
		return bad(errors.New("bench crowd: -modes is empty"))
	}
	for _, m := range strings.Split(*modes, ",") {
		cfg.Modes = append(cfg.Modes, crowd.Mode(strings.TrimSpace(m)))
	}
	if cfg.Plain == 0 {
		cfg.Plain = -1 // Config's zero means the default
	}
	if err := crowd.Defaults(cfg).Validate(); err != nil {
		return bad(err)
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return bad(err)
	}
	cfg.Logger, cfg.Progress = log, stderr
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("bench crowd: %w", err)
	}

	start := time.Now()
	res, err := crowd.Run(ctx, cfg)
	if err != nil {
		return err
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("bench crowd: %w", err)
	}
	jsonPath, svgPath := filepath.Join(*out, "crowd.json"), filepath.Join(*out, "crowd.svg")
	if err := os.WriteFile(jsonPath, append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench crowd: %w", err)
	}
	if err := os.WriteFile(svgPath, res.SVG(), 0o644); err != nil {
		return fmt.Errorf("bench crowd: %w", err)
	}
	if *jsonOut {
		_, err := fmt.Fprintf(stdout, "%s\n", js)
		return err
	}
	if err := res.WriteTable(stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nfigures in %s, chart in %s (%s in all)\n", jsonPath, svgPath, time.Since(start).Round(time.Second))
	return nil
}
