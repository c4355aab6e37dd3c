// Package examplesite writes a small but heavy web site, the same every time: a page with a stylesheet, a
// script, a 2 MB image and an 8 MB audio track. The demo serves it as the origin, and tests and benchmarks
// load it in browsers. The benchmarks build pages of their own from its parts: noise PNGs (NoisePNG) and MP4
// videos that Debian's ffmpeg makes once per machine (MP4).
package examplesite

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Paths of the site's files, as URL paths.
const (
	PageHTML  = "/index.html"
	StyleCSS  = "/style.css"
	ScriptJS  = "/app.js"
	ImagePNG  = "/media/photo.png"
	AudioWAV  = "/media/tone.wav"
	imageSide = 724 // 724×724 RGBA noise: about 2 MB, incompressible
)

// Heavy lists the assets a swarm should carry.
var Heavy = []string{ImagePNG, AudioWAV}

// Files returns the site's files by URL path.
func Files() (map[string][]byte, error) {
	img, err := NoisePNG(imageSide, 1)
	if err != nil {
		return nil, fmt.Errorf("examplesite: %w", err)
	}
	return map[string][]byte{
		PageHTML: []byte(page),
		StyleCSS: []byte(style),
		ScriptJS: []byte(script),
		ImagePNG: img,
		AudioWAV: toneWAV(8 << 20),
	}, nil
}

// Write writes the site under dir and returns its files by URL path.
func Write(dir string) (map[string][]byte, error) {
	files, err := Files()
	if err != nil {
		return nil, err
	}
	for p, b := range files {
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, fmt.Errorf("examplesite: %w", err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return nil, fmt.Errorf("examplesite: %w", err)
		}
	}
	return files, nil
}

// NoisePNG returns a side×side PNG of random pixels (about 4·side² bytes, incompressible), the same for the same seed.
func NoisePNG(side int, seed uint64) ([]byte, error) {
	r := rand.New(rand.NewPCG(seed, seed))
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	for y := 0; y < side; y++ {
		for x := 0; x < side; x++ {
			v := r.Uint32()
			img.SetNRGBA(x, y, color.NRGBA{byte(v), byte(v >> 8), byte(v >> 16), 255 - byte(v>>24)%16})
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// toneWAV returns a 16-bit stereo 44.1 kHz WAV of about size bytes: a slow chord.
func toneWAV(size int) []byte {
	const rate, channels = 44100, 2
	frames := (size - 44) / (2 * channels)
	var buf bytes.Buffer
	w := func(v any) { _ = binary.Write(&buf, binary.LittleEndian, v) }
	buf.WriteString("RIFF")
	w(uint32(36 + frames*2*channels))
	buf.WriteString("WAVEfmt ")
	w(uint32(16))
	w(uint16(1))
	w(uint16(channels))
	w(uint32(rate))
	w(uint32(rate * 2 * channels))
	w(uint16(2 * channels))
	w(uint16(16))
	buf.WriteString("data")
	w(uint32(frames * 2 * channels))
	for i := 0; i < frames; i++ {
		t := float64(i) / rate
		s := 0.2*math.Sin(2*math.Pi*220*t) + 0.15*math.Sin(2*math.Pi*277.18*t) + 0.1*math.Sin(2*math.Pi*329.63*t)
		v := int16(s * 32767 * 0.8)
		w(v)
		w(v)
	}
	return buf.Bytes()
}

const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Launch day</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/style.css">
<script src="/.swarm/loader.js" async></script>
</head>
<body>
<header><h1>Launch day</h1><p>Everyone is here at once. The page stays fast because every visitor helps.</p></header>
<main>
<figure><img id="photo" src="/media/photo.png" width="724" height="724" alt="A noisy photograph"><figcaption>2 MB photo</figcaption></figure>
<figure><audio id="tone" src="/media/tone.wav" controls preload="auto"></audio><figcaption>8 MB audio</figcaption></figure>
</main>
<script src="/app.js"></script>
</body>
</html>
`

const style = `body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:48rem;color:#222}
header{border-bottom:2px solid #e63;margin-bottom:1rem}
img{max-width:100%;height:auto;display:block}
figure{margin:1rem 0}
`

const script = `document.documentElement.dataset.app = 'ready';
`
