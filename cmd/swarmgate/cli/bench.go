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
	"time"

	"github.com/swarmgate/swarmgate/bench/trackerload"
)

const benchUsage = `Usage:
  swarmgate bench tracker [flags]    load swarmgate's tracker and bittorrent-tracker alike, print both
  swarmgate bench crowd [flags]      a flash crowd of headless Chromium visitors on a capped uplink,
                                     without and with swarmgate; prints a table, writes JSON and a chart
  swarmgate bench firstview [flags]  one visitor's first view of a page with a hero image and a video: direct,
                                     through swarmgate alone, and with a peer on the page; prints medians

Run 'swarmgate bench tracker -h', 'swarmgate bench crowd -h' or 'swarmgate bench firstview -h' for their flags.
`

// bench runs a benchmark: `bench tracker` starts swarmgate's tracker (this executable, `serve`) and the
// bittorrent-tracker npm server as child processes, one after the other, loads each with the same sockets and
// announces, and prints their figures side by side.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "crowd" {
		return benchCrowd(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "firstview" {
		return benchFirstView(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "tracker" {
		fmt.Fprint(stderr, benchUsage)
		return errUsage
	}
	fs := flag.NewFlagSet("bench tracker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 1000, fmt.Sprintf("WebSocket clients to open (at most %d)", trackerload.MaxConns))
	duration := fs.Duration("duration", 10*time.Second, "length of the measured announce phase")
	warmup := fs.Duration("warmup", time.Second, "unmeasured announce phase before it")
	concurrency := fs.Int("concurrency", 128, "announces in flight at once")
	swarms := fs.Int("swarms", 0, "torrents the clients share (default n/100)")
	offers := fs.Float64("offers", 0.1, "fraction of announces carrying one small WebRTC offer (0 for none)")
	againstNode := fs.Bool("against-node", true, "also benchmark the bittorrent-tracker npm server and compare")
	node := fs.String("node", "node", "Node.js executable")
	modules := fs.String("node-modules", "", "node_modules directory holding bittorrent-tracker (default: "+
		"looked for from the working directory and the executable's directory upward)")
	url := fs.String("url", "", "benchmark a swarmgate tracker already running at this ws:// URL instead of "+
		"starting one (give -pid for its memory and CPU figures)")
	pid := fs.Int("pid", 0, "process ID of the tracker at -url")
	jsonOut := fs.Bool("json", false, "print the figures as JSON instead of a table")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if *offers == 0 {
		*offers = -1 // Config's zero value means the default
	}
	cfg := trackerload.Config{
		Conns: *n, Swarms: *swarms, Concurrency: *concurrency, Duration: *duration, Warmup: *warmup,
		OfferFraction: *offers,
	}
	probe := trackerload.Defaults(cfg)
	probe.URL = "ws://" // known once the tracker runs
	if err := probe.Validate(); err != nil {
		fmt.Fprintln(stderr, "swarmgate:", err)
		return errUsage
	}

	var oursCmd *trackerload.Command
	if *url == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		oursCmd = &trackerload.Command{Name: "swarmgate", Path: exe, Output: stderr,
			Args: []string{"serve", "--listen", "127.0.0.1:0", "--log-level", "warn", // every socket from 127.0.0.1:
				"--max-conns-per-client", "-1", "--tracker-sockets-per-client", "-1"}}
	}
	ours, err := benchOne(ctx, cfg, oursCmd, *url, *pid, stderr)
	if err != nil {
		return err
	}

	var ref *trackerload.Result
	if *againstNode {
		nm := *modules
		if nm == "" {
			wd, _ := os.Getwd()
			exe, _ := os.Executable()
			if nm, err = trackerload.FindNodeModules(wd, filepath.Dir(exe)); err != nil {
				return fmt.Errorf("bench: %w (give -node-modules, or -against-node=false)", err)
			}
		}
		dir, err := os.MkdirTemp("", "swarmgate-bench-")
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(dir)
		nodeCmd, err := trackerload.NodeServer(*node, nm, dir)
		if err != nil {
			return err
		}
		nodeCmd.Output = stderr
		r, err := benchOne(ctx, cfg, &nodeCmd, "", 0, stderr)
		if err != nil {
			return err
		}
		ref = &r
	}

	cmp := trackerload.Compare(&ours, ref)
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(cmp); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		return nil
	}
	return cmp.WriteTable(stdout)
}

// benchOne starts the tracker (unless url is given), runs the benchmark against it, and stops it.
func benchOne(ctx context.Context, cfg trackerload.Config, cmd *trackerload.Command, url string, pid int,
	progress io.Writer) (trackerload.Result, error) {
	cfg.URL, cfg.PID, cfg.Name = url, pid, "swarmgate"
	if cmd != nil {
		p, err := trackerload.Start(ctx, *cmd)
		if err != nil {
			return trackerload.Result{}, fmt.Errorf("bench: %w", err)
		}
		defer p.Stop()
		cfg.URL, cfg.PID, cfg.Name = p.URL, p.PID, p.Name
		fmt.Fprintf(progress, "%s: pid %d at %s\n", p.Name, p.PID, p.URL)
	}
	res, err := trackerload.Run(ctx, cfg, progress)
	if err != nil {
		return res, fmt.Errorf("bench %s: %w", cfg.Name, err)
	}
	return res, nil
}
