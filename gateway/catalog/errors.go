package catalog

import "errors"

var (
	// ErrBadPath is returned for a URL path that cannot name a file in a torrent.
	ErrBadPath = errors.New("catalog: path cannot be a torrent file path")
	// ErrTooLarge is returned when a resource exceeds Config.MaxResourceSize.
	ErrTooLarge = errors.New("catalog: resource larger than the catalogue accepts")
	// ErrTruncated is returned when a body ends before its declared length.
	ErrTruncated = errors.New("catalog: body shorter than its declared length")
	// ErrNoVersion is returned when no version holds what was asked for.
	ErrNoVersion = errors.New("catalog: no such version")
	// ErrNotInVersion is returned for a path that a version does not hold.
	ErrNotInVersion = errors.New("catalog: no such file in version")
)
