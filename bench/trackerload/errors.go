package trackerload

import "errors"

// Errors of a benchmark run.
var (
	ErrConfig      = errors.New("trackerload: invalid configuration")
	ErrConnect     = errors.New("trackerload: connect phase failed")
	ErrNoProcInfo  = errors.New("trackerload: process memory and CPU time are read from /proc (Linux only)")
	ErrServerStart = errors.New("trackerload: tracker process did not print its ws:// URL")
	// ErrNoNodeModules is returned by FindNodeModules when no directory holds bittorrent-tracker.
	ErrNoNodeModules = errors.New("trackerload: no node_modules directory with bittorrent-tracker found")
)
