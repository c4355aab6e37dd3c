package webseed

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/swarmgate/swarmgate/certs"
	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/seeder"
)

// Config configures a Helper. Zero fields take the defaults below; DataDir and Seeder are required.
type Config struct {
	// DataDir holds the versions being fetched and served, one directory per job named by its infohash.
	// Directories of that shape left there by an earlier run are deleted by New: a helper keeps no state
	// across restarts, and a gateway that still wants help asks again.
	DataDir string
	// Seeder fetches and seeds the versions. It is shared with the server's own gateway and must have been
	// made with a ListenAddr, so it can dial the gateway's and other helpers' TCP/uTP listeners and be
	// dialed by them. The Helper does not close it.
	Seeder *seeder.Seeder

	// MaxJobs bounds the jobs held at once (fetching or ready). Default DefaultMaxJobs.
	MaxJobs int
	// MaxBytes bounds the total size of the versions held at once. Default DefaultMaxBytes.
	MaxBytes int64
	// InCrowd reports whether this server's own site is in a flash crowd; while it is, Accept refuses and
	// Spare is 0. Nil: never.
	InCrowd func() bool
	// Load reports how busy this server is with its own work, from 0 (idle) to 1 (full), for example its
	// request rate over its crowd threshold. Spare is at most 1-Load, and Accept refuses at 1. Nil: 0.
	Load func() float64
	// FetchTimeout bounds the fetch of one version; a job that is not ready by then fails. Default
	// DefaultFetchTimeout.
	FetchTimeout time.Duration

	// Transport carries requests to origins. Redirects are passed on to clients, never followed. Nil: a
	// federation.GuardedTransport, closed with the Helper: it connects to a loopback, private or link-local
	// address only for a job with AllowPrivate, whatever the origin's name resolves to.
	Transport http.RoundTripper
	// OriginTimeout bounds an origin's answer to one proxied request, up to its response headers. Default
	// DefaultOriginTimeout.
	OriginTimeout time.Duration
	// CacheBytes bounds the memory held by cached origin answers. Default DefaultCacheBytes.
	CacheBytes int64
	// MaxCachedObject is the largest origin answer body the cache keeps; larger answers are streamed to the
	// client and not kept. Default DefaultMaxCachedObject.
	MaxCachedObject int64
	// CacheTTL is how long an origin answer that gives no freshness of its own (no max-age, s-maxage or
	// Expires) but may be stored is served from the cache: a short "micro-cache" is what spares an origin
	// under a crowd. Zero: DefaultCacheTTL; negative: such answers are not cached.
	CacheTTL time.Duration

	// Federation, if set, makes the Helper a federation member's helper role: Help takes the members' help
	// requests (only for the sites the file lists for the asking member), ReleaseFrom their releases.
	Federation *federation.Federation
	// Self is this server's entry in Federation; Client signs and sends its messages (Ready, Decline,
	// Challenge) to the members it helps. Both are required with Federation.
	Self   federation.Member
	Client *federation.Client
	// Capacity is the load, in requests per second, this helper offers a site when it is idle (Accept's
	// Capacity is this times Spare). Default DefaultCapacity.
	Capacity int
	// ACME, if set, lets this helper help sites served over HTTPS: for each, it gets a certificate of its own
	// for the site's name from this ACME CA by DNS-01, asking the site's gateway to publish the challenge.
	// Its server also needs an HTTPS listener (Addrs().TLS).
	ACME *certs.Config
	// PeerListen is the seeder's BitTorrent listen address, as configured: a help Accept names it (or, when
	// it is on every interface, the federation file's first address for Self) for the site's seeder.
	PeerListen string
	// Addrs reports where the server listens for steered clients: plain HTTP, and HTTPS (nil without). A
	// helper reports them in Ready (a listener on every interface as Self's first address).
	Addrs func() Addrs
	// OwnSite reports whether a host name (BareHost) is one of the server's own: never helped, and never
	// routed to the helper. OwnVersion reports whether a version name under /.swarm/seed/ is one of the
	// server's own site's. Nil: none.
	OwnSite    func(host string) bool
	OwnVersion func(name string) bool

	// Logger receives the helper's logs; nil discards them.
	Logger *slog.Logger
}

// Addrs are a server's listeners for clients.
type Addrs struct {
	HTTP, TLS net.Addr
}

// Defaults and limits.
const (
	// DefaultMaxJobs: a crowd usually needs one version of one site; a few more let a server help several
	// members at once without its disk and upload being split too thin.
	DefaultMaxJobs = 4
	// DefaultMaxBytes bounds the disk a helper lends to others.
	DefaultMaxBytes = 4 << 30
	// DefaultFetchTimeout: a version of a few hundred MB arrives in seconds between servers; one that has
	// not arrived in ten minutes will not help with this crowd.
	DefaultFetchTimeout = 10 * time.Minute
	// DefaultOriginTimeout bounds the wait for an origin's response headers; an origin in a crowd is slow,
	// but a client waiting longer than this has given up.
	DefaultOriginTimeout = 30 * time.Second
	// DefaultCacheBytes bounds the cache of origin answers (pages and small resources not in the torrent).
	DefaultCacheBytes = 64 << 20
	// DefaultMaxCachedObject keeps one large answer from evicting the many small ones that matter.
	DefaultMaxCachedObject = 4 << 20
	// DefaultCacheTTL: during a crowd most requests for a page come within seconds of each other, so even a
	// few seconds of reuse takes nearly all of them off the origin, and nobody sees content older than that.
	DefaultCacheTTL = 5 * time.Second
	// maxCacheTTL caps what an origin's own headers may ask for: helpers are temporary, and a page cached
	// for a day would outlive the crowd.
	maxCacheTTL = 10 * time.Minute

	// maxInfoBytes bounds a job's info dictionary: 20 bytes of hash per piece, so 8 MiB covers a 25 GB
	// version at 64 KiB pieces, far above any site.
	maxInfoBytes = 8 << 20
	// maxVersionBytes bounds a version's size (and keeps the sum of its file lengths from overflowing): a
	// terabyte is far beyond any site, and beyond what a helper lends.
	maxVersionBytes = 1 << 40
	// maxFiles bounds the files of one version, padding included, so one job cannot make the helper build
	// huge indexes.
	maxFiles = 100_000
	// maxPeerAddrs and maxWebseeds bound the sources a job lists; a federation has a handful of members.
	maxPeerAddrs = 64
	maxWebseeds  = 64
)

func (c *Config) fillDefaults() error {
	if c.DataDir == "" {
		return fmt.Errorf("webseed: Config.DataDir is required: %w", ErrBadConfig)
	}
	if c.Seeder == nil {
		return fmt.Errorf("webseed: Config.Seeder is required: %w", ErrBadConfig)
	}
	if c.MaxJobs <= 0 {
		c.MaxJobs = DefaultMaxJobs
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
	if c.OriginTimeout <= 0 {
		c.OriginTimeout = DefaultOriginTimeout
	}
	if c.CacheBytes <= 0 {
		c.CacheBytes = DefaultCacheBytes
	}
	if c.MaxCachedObject <= 0 {
		c.MaxCachedObject = DefaultMaxCachedObject
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}
