package trackerload

import (
	"fmt"
	"time"

	"github.com/swarmgate/swarmgate/tracker"
)

// Bounds on a run. The load generator holds one descriptor per socket, so Conns is bounded by the open-file
// limit of the machine (20,000 here): the tracker under test needs the same number in its own process.
const (
	// MaxConns bounds Config.Conns.
	MaxConns = 10_000
	// MaxAnnouncesDefault bounds the announces recorded in one run; each costs 4 bytes of latency record.
	MaxAnnouncesDefault = 2_000_000
)

// Config is one benchmark run. Zero fields take the defaults filled by Defaults.
type Config struct {
	// Name labels the tracker under test in progress lines and results.
	Name string
	// URL is the tracker's ws:// address.
	URL string
	// PID is the process serving URL, whose resident memory and CPU time are read from /proc. Zero skips
	// those figures.
	PID int

	// Conns is the number of sockets, each announcing one torrent (default 1,000; at most MaxConns).
	Conns int
	// Swarms is the number of torrents the sockets share (default Conns/100: 100 peers per swarm). At most
	// 1,000 sockets per swarm: bittorrent-tracker keeps at most 1,000 peers per swarm and evicts the rest.
	Swarms int
	// Concurrency is how many announces are in flight at once during the throughput phase (default 128, at
	// most Conns). Each in-flight announce cycles over its own share of the sockets: when its reply arrives the
	// next socket of that share announces.
	Concurrency int
	// Duration bounds the measured throughput phase (default 10 s); Warmup precedes it, unmeasured (default
	// 1 s).
	Duration time.Duration
	Warmup   time.Duration
	// MaxAnnounces bounds the announces measured (default MaxAnnouncesDefault): the throughput phase ends at
	// Duration or MaxAnnounces, whichever comes first.
	MaxAnnounces int
	// MaxRatePerConn bounds the announces per second of one socket (default 80% of the swarmgate tracker's
	// per-socket message rate), so that the benchmark measures the tracker and not its flood protection.
	MaxRatePerConn float64
	// OfferFraction is the fraction of announces carrying one small WebRTC offer (default 0.1; negative for
	// none). The rest carry no offers, as an announce on the interval or a seeder's update does.
	OfferFraction float64
	// SeederFraction is the fraction of sockets announcing left=0 (default 0.2).
	SeederFraction float64

	// DialConcurrency bounds the WebSocket handshakes under way at once (default 64).
	DialConcurrency int
	// ConnectTimeout bounds the connect phase: all sockets open and announced once (default 2 min).
	ConnectTimeout time.Duration
	// ReplyTimeout is how long an announce may wait for its reply before it counts as timed out and the next
	// socket announces instead (default 5 s).
	ReplyTimeout time.Duration
	// Settle is how long the idle sockets sit before resident memory is read (default 3 s), so that the
	// connect phase's garbage can be collected.
	Settle time.Duration
	// ProgressInterval is how often a progress line is printed (default 1 s).
	ProgressInterval time.Duration
}

// Defaults returns cfg with zero fields set to their defaults.
func Defaults(cfg Config) Config {
	if cfg.Conns <= 0 {
		cfg.Conns = 1_000
	}
	if cfg.Swarms <= 0 {
		cfg.Swarms = max(1, cfg.Conns/100)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 128
	}
	cfg.Concurrency = min(cfg.Concurrency, cfg.Conns)
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = time.Second
	}
	if cfg.MaxAnnounces <= 0 {
		cfg.MaxAnnounces = MaxAnnouncesDefault
	}
	if cfg.MaxRatePerConn <= 0 {
		cfg.MaxRatePerConn = 0.8 * tracker.DefaultMessageRate
	}
	if cfg.OfferFraction == 0 {
		cfg.OfferFraction = 0.1
	}
	cfg.OfferFraction = min(max(cfg.OfferFraction, 0), 1)
	if cfg.SeederFraction == 0 {
		cfg.SeederFraction = 0.2
	}
	cfg.SeederFraction = min(max(cfg.SeederFraction, 0), 1)
	if cfg.DialConcurrency <= 0 {
		cfg.DialConcurrency = 64
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 2 * time.Minute
	}
	if cfg.ReplyTimeout <= 0 {
		cfg.ReplyTimeout = 5 * time.Second
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 3 * time.Second
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = time.Second
	}
	return cfg
}

// maxPeersPerSwarm is bittorrent-tracker's default LRU size per swarm (peersCacheLength): past it, peers are
// evicted and the comparison would no longer be like for like.
const maxPeersPerSwarm = 1000

// Validate reports what is wrong with a configuration that Defaults has filled.
func (cfg *Config) Validate() error {
	switch {
	case cfg.URL == "":
		return fmt.Errorf("%w: no tracker URL", ErrConfig)
	case cfg.Conns > MaxConns:
		return fmt.Errorf("%w: %d sockets, at most %d", ErrConfig, cfg.Conns, MaxConns)
	case cfg.Swarms > cfg.Conns:
		return fmt.Errorf("%w: %d swarms for %d sockets", ErrConfig, cfg.Swarms, cfg.Conns)
	case (cfg.Conns+cfg.Swarms-1)/cfg.Swarms > maxPeersPerSwarm:
		return fmt.Errorf("%w: more than %d sockets per swarm (%d sockets, %d swarms)", ErrConfig,
			maxPeersPerSwarm, cfg.Conns, cfg.Swarms)
	}
	return nil
}
