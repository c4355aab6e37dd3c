package firstview

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// URL paths of the page and its two heavy elements.
const (
	PagePath  = "/index.html"
	HeroPath  = "/media/hero.png"
	VideoPath = "/media/clip.mp4"
)

// site is the benchmark's web site on disk.
type site struct {
	dir        string
	heroBytes  int64
	videoBytes int64
}

// pageHTML is the page: the hero image and the video side by side, both in a headless browser's first
// viewport (800×600), so that neither is held back as off screen. The origin's page has no swarmgate script:
// the gateway injects its loader (gateway.Config.Inject), so direct visitors get exactly the site's page.
const pageHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>First view</title>
<link rel="icon" href="data:,">
<style>body{margin:8px;font-family:sans-serif}main{display:flex;gap:8px;align-items:flex-start}video{width:280px;height:auto}</style>
</head>
<body>
<main>
<img id="hero" src="%s" width="%d" height="%d" alt="hero" elementtiming="hero">
<video id="clip" src="%s" width="%d" height="%d" muted autoplay playsinline loop></video>
</main>
</body>
</html>
`

// makeSite writes the page, the hero image and the video (made by ffmpeg, or taken from the cache) under
// cfg.Dir/site.
func makeSite(ctx context.Context, cfg Config) (*site, error) {
	s := &site{dir: filepath.Join(cfg.Dir, "site")}
	if err := os.MkdirAll(filepath.Join(s.dir, "media"), 0o755); err != nil {
		return nil, fmt.Errorf("firstview: %w", err)
	}
	hero, err := noisePNG(cfg.HeroSide, 1)
	if err != nil {
		return nil, fmt.Errorf("firstview: hero image: %w", err)
	}
	s.heroBytes = int64(len(hero))
	if err := os.WriteFile(filepath.Join(s.dir, filepath.FromSlash(HeroPath)), hero, 0o644); err != nil {
		return nil, fmt.Errorf("firstview: %w", err)
	}
	video, err := cachedVideo(ctx, cfg)
	if err != nil {
		return nil, err
	}
	dst := filepath.Join(s.dir, filepath.FromSlash(VideoPath))
	if err := os.Link(video, dst); err != nil { // the cache may be on another file system: copy then
		b, rerr := os.ReadFile(video)
		if rerr != nil {
			return nil, fmt.Errorf("firstview: %w", rerr)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return nil, fmt.Errorf("firstview: %w", err)
		}
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return nil, fmt.Errorf("firstview: %w", err)
	}
	s.videoBytes = fi.Size()
	page := fmt.Sprintf(pageHTML, HeroPath, cfg.HeroSide, cfg.HeroSide, VideoPath, cfg.Video.Width, cfg.Video.Height)
	if err := os.WriteFile(filepath.Join(s.dir, filepath.FromSlash(PagePath)), []byte(page), 0o644); err != nil {
		return nil, fmt.Errorf("firstview: %w", err)
	}
	return s, nil
}

// noisePNG is an opaque side×side PNG of seeded noise: incompressible, about 3·side² bytes, the same every
// time.
func noisePNG(side int, seed uint64) ([]byte, error) {
	r := rand.New(rand.NewPCG(seed, seed))
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	for y := range side {
		for x := range side {
			v := r.Uint32()
			img.SetNRGBA(x, y, color.NRGBA{byte(v), byte(v >> 8), byte(v >> 16), 255})
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// cachedVideo returns the path of the video cfg.Video describes in cfg.CacheDir, making it first if it is not
// there. The name holds every parameter, so a video is made once per machine and parameters.
func cachedVideo(ctx context.Context, cfg Config) (string, error) {
	v := cfg.Video
	name := fmt.Sprintf("firstview-testsrc2-%dx%d-%ds-%dk-v1.mp4", v.Width, v.Height, v.Seconds, v.Kbps)
	path := filepath.Join(cfg.CacheDir, name)
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return path, nil
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
		return "", fmt.Errorf("firstview: %w", err)
	}
	exe, err := exec.LookPath(cfg.FFmpeg)
	if err != nil {
		return "", fmt.Errorf("%w: %w (install Debian's ffmpeg: apt-get install ffmpeg)", ErrFFmpeg, err)
	}
	tmp := path + fmt.Sprintf(".%d.tmp.mp4", os.Getpid())
	defer os.Remove(tmp)
	cmd := exec.CommandContext(ctx, exe, ffmpegArgs(v, tmp)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %w: %s", ErrFFmpeg, err, lastLines(stderr.String(), 5))
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("firstview: %w", err)
	}
	return path, nil
}

// ffmpegArgs makes a deterministic MP4: a synthetic test pattern and tone, a fixed bitrate, one encoder
// thread, bit-exact muxing without metadata, and the moov atom first so that playback can start from the
// first bytes. A keyframe every second lets a player start or seek anywhere.
func ffmpegArgs(v Video, out string) []string {
	return []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=30", v.Width, v.Height),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", fmt.Sprint(v.Seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-threads", "1", "-pix_fmt", "yuv420p",
		"-b:v", fmt.Sprintf("%dk", v.Kbps), "-maxrate", fmt.Sprintf("%dk", v.Kbps), "-bufsize", fmt.Sprintf("%dk", v.Kbps),
		"-g", "30",
		"-c:a", "aac", "-b:a", "64k",
		"-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
		"-movflags", "+faststart", out}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "; ")
}

// origin is the site's origin: a plain Go file server on loopback that counts the bytes it sends.
type origin struct {
	url  string
	sent atomic.Int64
	srv  *http.Server
	wg   sync.WaitGroup
}

func startOrigin(dir string, log *slog.Logger) (*origin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("firstview: origin: %w", err)
	}
	o := &origin{url: "http://" + ln.Addr().String()}
	files := http.FileServer(http.Dir(dir))
	o.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			files.ServeHTTP(countingWriter{w, &o.sent}, r)
		})}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		if err := o.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("firstview: origin", slog.Any("err", err))
		}
	}()
	return o, nil
}

func (o *origin) close() {
	_ = o.srv.Close()
	o.wg.Wait()
}

// countingWriter adds the body bytes it writes to n.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (ServeContent's flushes and deadlines).
func (w countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
