package examplesite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrFFmpeg is returned, wrapped with the details, when ffmpeg is missing or fails to make a video.
var ErrFFmpeg = errors.New("examplesite: ffmpeg")

// Video describes an MP4 that MP4 makes with ffmpeg: the testsrc2 pattern at 30 frames a second and a sine
// tone, H.264 at a fixed bitrate and AAC, moov first, so that the same parameters always make the same file.
type Video struct {
	Width   int `json:"width"`
	Height  int `json:"height"`
	Seconds int `json:"seconds"`
	// Kbps is the video bitrate in kbit/s; the audio adds 64 kbit/s.
	Kbps int `json:"kbps"`
}

// Size is about how many bytes the video takes: its bitrate and the audio's over its length.
func (v Video) Size() int64 { return int64(v.Seconds) * int64(v.Kbps+64) * 1000 / 8 }

// MP4 returns the path of the video v in cacheDir, making it first with the ffmpeg executable (a name on PATH
// or a path; Debian's package `ffmpeg`) if it is not there. The file's name holds every parameter, so a video
// is made once per machine and parameters. Concurrent makers of one video each write a file of their own and
// rename it into place.
func MP4(ctx context.Context, ffmpeg, cacheDir string, v Video) (string, error) {
	name := fmt.Sprintf("testsrc2-%dx%d-%ds-%dk-v1.mp4", v.Width, v.Height, v.Seconds, v.Kbps)
	path := filepath.Join(cacheDir, name)
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return path, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("examplesite: video cache: %w", err)
	}
	exe, err := exec.LookPath(ffmpeg)
	if err != nil {
		return "", fmt.Errorf("%w: %w (install Debian's ffmpeg: apt-get install ffmpeg)", ErrFFmpeg, err)
	}
	tmp, err := os.CreateTemp(cacheDir, name+".*.tmp.mp4")
	if err != nil {
		return "", fmt.Errorf("examplesite: video cache: %w", err)
	}
	_ = tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.CommandContext(ctx, exe, ffmpegArgs(v, tmp.Name())...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s: %w: %s", ErrFFmpeg, name, err, lastLines(stderr.String(), 5))
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("examplesite: video cache: %w", err)
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
		"-f", "mp4", "-movflags", "+faststart", out}
}

// lastLines is the last n lines of s, joined: the end of ffmpeg's complaint.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "; ")
}
