package tracker

import "time"

// Limits that protect the tracker and its peers from a single misbehaving socket. Each is sized from what real
// clients send, with room to spare.
const (
	// MaxMessageSize bounds one WebSocket frame. A browser announce carries at most 5 offers of about 1–4 KB of
	// SDP each (more with many ICE candidates); 64 KiB leaves room for 10 large offers.
	MaxMessageSize = 64 << 10

	// MaxOffersPerAnnounce bounds the offers relayed for one announce. WebTorrent clients send up to 5
	// (bittorrent-tracker caps numwant at 5 for offers); twice that allows other clients some latitude while
	// stopping one message from fanning out across a whole swarm.
	MaxOffersPerAnnounce = 10

	// MaxTorrentsPerConn bounds the peers one socket may hold across swarms. A WebTorrent client multiplexes all
	// of its torrents for one tracker over one socket; a browser page holds a handful, a busy seeder a few
	// hundred.
	MaxTorrentsPerConn = 1000

	// MaxScrapeHashes bounds the info_hash array of one scrape (bittorrent-tracker clients scrape one at a time;
	// 100 fits well within MaxMessageSize both ways).
	MaxScrapeHashes = 100

	// MaxScrapeAll bounds the swarms listed by a scrape without info_hash, so that the reply (about 80 bytes per
	// swarm) stays near MaxMessageSize.
	MaxScrapeAll = 1000

	// MaxPendingOffersPerConn bounds the relayed offers that wait for an answer from one socket. Offers beyond it
	// are not relayed to that socket; a socket with this many unanswered offers is not answering anyway.
	MaxPendingOffersPerConn = 512

	// MaxQueuedMessages bounds the messages waiting to be written to one socket. A socket that does not read
	// this many is too slow to be useful as a peer and is closed, so it cannot make the tracker hold memory.
	MaxQueuedMessages = 256

	// DefaultMessageRate and DefaultMessageBurst form the token bucket for messages from one socket: a client
	// announcing many torrents at start-up sends a burst, after which an honest client sends a few messages a
	// minute per torrent.
	DefaultMessageRate  = 50 // messages per second, sustained
	DefaultMessageBurst = 200

	// MaxRateViolations is how many rate-limited messages a socket may send before it is closed: the first ones
	// are answered with a failure reason so an honest but bursty client can back off.
	MaxRateViolations = 100

	// DefaultMaxSocketsPerClient bounds the sockets one client (an IPv4 address, an IPv6 /64) holds open. A
	// page holds one socket for all its torrents, so this is 256 pages open at once behind one address: a
	// large office or campus NAT. Each idle socket costs a descriptor and about 2 KiB; one address cannot take
	// more than a few percent of a gateway's 20,000 descriptors.
	DefaultMaxSocketsPerClient = 256

	// DefaultMaxSwarmsPerClient bounds the swarms one client has started that still exist. Visitors of a site
	// join the few swarms of its versions, started by the gateway's own seeder; a client that seeds a library
	// of its own multiplexes it over one socket, which holds at most MaxTorrentsPerConn torrents, so that many
	// is a generous bound for one address.
	DefaultMaxSwarmsPerClient = MaxTorrentsPerConn
)

// Timing defaults, used where Config leaves a field zero.
const (
	// DefaultInterval is the announce interval sent to clients: bittorrent-tracker's WebSocket default (2 min).
	DefaultInterval = 2 * time.Minute
	// DefaultOfferTTL is how long a relayed offer can be answered. WebTorrent clients give up on an offer after
	// 50 s (OFFER_TIMEOUT in bittorrent-tracker's websocket client).
	DefaultOfferTTL = 50 * time.Second
	// DefaultPingInterval is how often the tracker pings an idle socket; a socket is alive while it answers.
	DefaultPingInterval = 30 * time.Second
	// DefaultPongWait is how long a socket may stay silent (no frame, no pong) before it is closed and its peers
	// leave their swarms. Longer than two ping intervals, so one lost pong does not drop a peer.
	DefaultPongWait = 75 * time.Second
	// DefaultWriteTimeout bounds one write to a socket.
	DefaultWriteTimeout = 10 * time.Second
)
