package trackerbench

import "errors"

// Errors of a benchmark run.
var (
	ErrConfig      = errors.New("trackerbench: invalid configuration")
	ErrConnect     = errors.New("trackerbench: connect phase failed")
	ErrNoProcInfo  = errors.New("trackerbench: process memory and CPU time are read from /proc (Linux only)")
	ErrServerStart = errors.New("trackerbench: tracker process did not print its ws:// URL")
	// ErrNoNodeModules is returned by FindNodeModules when no directory holds bittorrent-tracker.
	ErrNoNodeModules = errors.New("trackerbench: no node_modules directory with bittorrent-tracker found")
)
