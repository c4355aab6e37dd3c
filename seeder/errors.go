package seeder

import "errors"

// Errors of the seeder. Returned errors wrap them with context and the "seeder:" prefix; test them with
// errors.Is.
var (
	// ErrNoDataDir means Config.DataDir is empty.
	ErrNoDataDir = errors.New("Config.DataDir is required")
	// ErrBadTrackerURL means a tracker URL is not ws:// or wss://.
	ErrBadTrackerURL = errors.New("tracker URL must be ws:// or wss://")
	// ErrBadListenAddr means Config.ListenAddr is not IP:port or :port.
	ErrBadListenAddr = errors.New("listen address must be IP:port or :port")
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("closed")
	// ErrRunning is returned by a second concurrent call to Run.
	ErrRunning = errors.New("already running")
	// ErrBadMetaInfo means a torrent's info dictionary does not decode.
	ErrBadMetaInfo = errors.New("invalid metainfo")
	// ErrDuplicateTorrent means the torrent is already being seeded.
	ErrDuplicateTorrent = errors.New("torrent already added")
	// ErrUnknownTorrent means the torrent is not being seeded.
	ErrUnknownTorrent = errors.New("unknown torrent")
	// ErrNoFile means a torrent has no file at the path given.
	ErrNoFile = errors.New("no such file in the torrent")
	// ErrMissingFile means a file of the torrent is absent from its directory or has the wrong size.
	ErrMissingFile = errors.New("torrent file missing or of the wrong size")
	// ErrIncomplete means some pieces of the files on disk do not match the torrent's hashes.
	ErrIncomplete = errors.New("data does not match the torrent's piece hashes")
	// ErrTrackerClosed means a tracker socket closed; the seeder reconnects.
	ErrTrackerClosed = errors.New("tracker socket closed")
	// ErrTooManyPeers means an offer was not answered because MaxPeers browsers are connected.
	ErrTooManyPeers = errors.New("at Config.MaxPeers")
	// ErrBadOffer means a relayed offer is not a session description pion accepts.
	ErrBadOffer = errors.New("invalid offer")
	// ErrGatherTimeout means ICE gathering for an answer did not complete in time.
	ErrGatherTimeout = errors.New("ICE gathering timed out")
)
