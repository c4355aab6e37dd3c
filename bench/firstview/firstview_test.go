package firstview

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/internal/procstat"
	"github.com/swarmgate/swarmgate/internal/testlog"
)

// TestTinyFirstView runs the benchmark the way `swarmgate bench firstview` does, at a size that takes
// seconds (one run, a small image, a video of about 1 MB, no emulation), so that it cannot rot: every mode
// produces every figure, and the table and JSON come out. It asserts no timings.
func TestTinyFirstView(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium and gateways")
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg not found (bash .ci/test installs Debian's ffmpeg):", err)
	}
	goroutines := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var progress strings.Builder
	configured := 0
	res, err := Run(ctx, Config{
		Runs: 1, Networks: []Network{Loopback}, HeroSide: 200,
		Video:       Video{Width: 640, Height: 360, Seconds: 4, Kbps: 2000},
		PageTimeout: time.Minute, Dir: t.TempDir(), CacheDir: t.TempDir(), Progress: &progress,
		Logger:           testlog.New(t, slog.LevelWarn),
		ConfigureGateway: func(gc *gateway.Config) { configured++; gc.Visitors.P2P = gateway.P2PAlways },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s", progress.String())
	// Every gateway, origin and browser is stopped when Run returns: what the run started winds down.
	http.DefaultClient.CloseIdleConnections()
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > goroutines+2; {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines after the run, %d before:\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
	if missing := res.Missing(); len(missing) > 0 {
		t.Fatalf("%v:\n%s", ErrMissing, strings.Join(missing, "\n"))
	}
	if len(res.Networks) != 1 || len(res.Networks[0].Modes) != 3 {
		t.Fatalf("result holds %+v, want one network with three modes", res.Networks)
	}
	for i, mr := range res.Networks[0].Modes {
		if mr.Mode != Modes[i] {
			t.Errorf("mode %d is %q, want %q", i, mr.Mode, Modes[i])
		}
		if mr.Median.HeroMs <= 0 || mr.Median.FrameMs <= 0 || mr.Median.CompleteMs <= 0 {
			t.Errorf("%s: medians %+v", mr.Mode, mr.Median)
		}
		if mr.Ratio == nil || mr.Ratio.HeroMs <= 0 || mr.Ratio.FrameMs <= 0 || mr.Ratio.CompleteMs <= 0 {
			t.Errorf("%s: ratios to direct %+v", mr.Mode, mr.Ratio)
		}
	}
	if direct := res.Networks[0].Modes[0].Visits[0]; direct.Bytes[BytesOrigin] < res.HeroBytes {
		t.Errorf("direct visit took %d bytes from the origin; the hero alone is %d", direct.Bytes[BytesOrigin], res.HeroBytes)
	}
	if configured != 2 {
		t.Errorf("ConfigureGateway called %d times, want once per gateway (2)", configured)
	}
	if res.VideoBytes < 500e3 || res.VideoBytes > 2e6 {
		t.Errorf("video is %d bytes, want about 1 MB", res.VideoBytes)
	}
	// Each visit's CPU, where /proc tells it: the visitor's browser settled before the navigation and worked during
	// the visit, and in the peer mode the peer's browser too.
	if _, err := procstat.MachineCPUTime(); err == nil {
		for _, mr := range res.Networks[0].Modes {
			if v := mr.Visits[0]; v.SettleMs < settleWindow.Seconds()*1e3 {
				t.Errorf("%s: the browser settled in %.0f ms before the navigation; want one window (%v) at least", mr.Mode, v.SettleMs, settleWindow)
			}
			c := mr.Visits[0].CPU
			if c == nil || c.Visitor <= 0 || (mr.Mode == Peer) != (c.Peer > 0) || c.Busy <= 0 || c.Busy > 1.05 {
				t.Errorf("%s: CPU %+v; want the visitor's browser's time, the peer's in the peer mode only, and busy in (0, 1]", mr.Mode, c)
			}
		}
	}
	// Through swarmgate, the engine's counts once it had the whole page: at least the hero and the video.
	for _, mr := range res.Networks[0].Modes[1:] {
		w := mr.Visits[0].Whole
		if got := w[BytesPeers] + w[BytesSeeder] + w[BytesWebseed]; got < res.HeroBytes+res.VideoBytes {
			t.Errorf("%s: the engine had %d bytes (%v) once it had the page; the hero and video are %d", mr.Mode, got, w, res.HeroBytes+res.VideoBytes)
		}
	}
	js, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"heroMs"`, `"frameMs"`, `"completeMs"`, `"ratioToDirect"`, `"peers"`, `"visitorMs"`, `"whole"`} {
		if !strings.Contains(string(js), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

// TestConfigValidate checks the defaults and a table of configurations that cannot run.
func TestConfigValidate(t *testing.T) {
	d := Defaults(Config{})
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if d.Runs != DefaultRuns || len(d.Networks) != 2 || d.Networks[0] != Emulated80ms40Mbit || len(d.Modes) != 3 ||
		d.Video != DefaultVideo || d.HeroSide != DefaultHeroSide {
		t.Errorf("defaults = %+v", d)
	}
	for name, mod := range map[string]func(*Config){
		"runs":          func(c *Config) { c.Runs = -1 },
		"tiny hero":     func(c *Config) { c.HeroSide = 100 },
		"odd video":     func(c *Config) { c.Video.Width = 641 },
		"long video":    func(c *Config) { c.Video.Seconds = 1000 },
		"low bitrate":   func(c *Config) { c.Video.Kbps = 10 },
		"timeout":       func(c *Config) { c.PageTimeout = time.Millisecond },
		"unknown mode":  func(c *Config) { c.Modes = []Mode{"cdn"} },
		"mode twice":    func(c *Config) { c.Modes = []Mode{Direct, Direct} },
		"network twice": func(c *Config) { c.Networks = []Network{Loopback, Loopback} },
		"negative rate": func(c *Config) { c.Networks = []Network{{Name: "x", Download: -1}} },
	} {
		c := Defaults(Config{})
		mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Validate() = %v, want ErrConfig", name, err)
		}
	}
}

// TestServiceWorkerEmulated runs one visit through the gateway, P2P always, on the emulated network: the
// page's service worker makes requests of its own (its manifest at least), which the tab's conditions do not
// cover, so the visit must have emulated at least one service worker target. It asserts no timings.
func TestServiceWorkerEmulated(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium and a gateway")
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg not found (bash .ci/test installs Debian's ffmpeg):", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{
		Runs: 1, Networks: []Network{Emulated80ms40Mbit}, Modes: []Mode{Gateway}, HeroSide: 200,
		Video:       Video{Width: 320, Height: 180, Seconds: 2, Kbps: 500},
		PageTimeout: time.Minute, Dir: t.TempDir(), CacheDir: t.TempDir(),
		Logger:           testlog.New(t, slog.LevelWarn),
		ConfigureGateway: func(gc *gateway.Config) { gc.Visitors.P2P = gateway.P2PAlways },
	})
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
	if missing := res.Missing(); len(missing) > 0 {
		t.Fatalf("%v:\n%s", ErrMissing, strings.Join(missing, "\n"))
	}
	v := res.Networks[0].Modes[0].Visits[0]
	t.Logf("service workers emulated: %d, lag %.0f ms, requests before: %q", v.EmulatedWorkers, v.WorkerLagMs, v.WorkerEarly)
	if v.EmulatedWorkers < 1 {
		t.Errorf("the visit emulated %d service workers, want at least 1 (swarmgate's /.swarm/sw.js)", v.EmulatedWorkers)
	}
	// The engine runs in a dedicated worker, whose requests Chromium's emulation misses: they get the
	// conditions at the server (engineNet), the tracker's WebSocket at least.
	if v.EngineEmulated < 1 {
		t.Errorf("%d of the engine's requests were emulated at the server, want at least 1 (its tracker socket)", v.EngineEmulated)
	}
	if !strings.Contains(table.String(), "service workers emulated") {
		t.Error("the table does not say how many service workers were emulated")
	}
}
