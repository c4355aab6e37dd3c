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
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmgate/swarmgate/internal/examplesite"
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
// there (examplesite.MP4).
func cachedVideo(ctx context.Context, cfg Config) (string, error) {
	path, err := examplesite.MP4(ctx, cfg.FFmpeg, cfg.CacheDir, examplesite.Video(cfg.Video))
	if errors.Is(err, examplesite.ErrFFmpeg) {
		return "", fmt.Errorf("%w: %w", ErrFFmpeg, err)
	} else if err != nil {
		return "", fmt.Errorf("firstview: %w", err)
	}
	return path, nil
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
