package firstview

import "errors"

// Sentinel errors, wrapped with the details.
var (
	// ErrConfig: the configuration cannot run (Config.Validate).
	ErrConfig = errors.New("firstview: bad configuration")
	// ErrFFmpeg: ffmpeg is missing or failed to make the video.
	ErrFFmpeg = errors.New("firstview: ffmpeg")
	// ErrMissing: a visit did not produce one of its figures (Result.Missing lists them).
	ErrMissing = errors.New("firstview: figure missing")
)
