package seeder

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// Config configures a Seeder. Zero fields take the defaults below; DataDir is required.
type Config struct {
	// TrackerURLs are the WebSocket trackers (ws:// or wss://) the seeder joins to answer browsers' offers,
	// usually the gateway's own /.swarm/announce. Browsers find the seeder only through these, so a torrent's
	// magnet link or announce list should name the same trackers. Empty: no WebRTC, only TCP/uTP peers.
	TrackerURLs []string

	// API builds the peer connections that answer browsers. It must have been made from a SettingEngine
	// with DetachDataChannels(), and should disable mDNS candidates (so a browser's address is a parseable
	// IP) and accept peer-reflexive candidates without delay. Nil: NewAPI(Logger).
	API *webrtc.API
	// ICEServers are the STUN/TURN servers the answering peer connections use. Nil: none, which works on
	// loopback and for browsers that can reach the gateway's host candidates directly.
	ICEServers []webrtc.ICEServer

	// DataDir holds the data of torrents added without a directory of their own. Required.
	DataDir string
	// ListenAddr, when set ("IP:port" or ":port", port 0 for any), makes the engine accept and dial ordinary
	// BitTorrent peers over TCP and uTP there, as helpers fetching from the gateway need. Empty: off.
	ListenAddr string

	// MaxPeers bounds the browsers served at once, counting peer connections from answer to close; offers
	// beyond it are not answered (the browser gets its pieces elsewhere). Default DefaultMaxPeers.
	MaxPeers int
	// Shape, if set, wraps every peer connection (browsers' data channels, BitTorrent peers accepted and
	// dialed) before the engine uses it, as uplink.Uplink.Conn does to shape what the machine sends. Nil:
	// connections are used as they are.
	Shape func(net.Conn) net.Conn
	// GatherTimeout bounds ICE candidate gathering for one answer. Default DefaultGatherTimeout.
	GatherTimeout time.Duration
	// OpenTimeout is how long an answered peer connection may take to open its data channel before it is
	// closed. Default DefaultOpenTimeout.
	OpenTimeout time.Duration

	// Logger receives the seeder's logs; nil discards them.
	Logger *slog.Logger
	// EngineLogLevel is the least level of the BitTorrent engine's (anacrolix/torrent's) own messages passed
	// on to Logger, tagged component=torrent. Nil: slog.LevelWarn, since the engine reports every peer that
	// goes away at higher levels than a server's log wants.
	EngineLogLevel slog.Leveler
}

// Defaults for zero Config fields.
const (
	// DefaultMaxPeers bounds concurrent browser connections. Each costs a few goroutines, SCTP/DTLS state
	// and up to a few MiB of queued upload; 256 stays well inside the machine's 20,000 descriptors and a
	// few hundred MiB of memory while serving a page's visitors at several MB/s each.
	DefaultMaxPeers = 256
	// DefaultGatherTimeout bounds ICE gathering: host candidates take milliseconds, and pion's STUN gathering
	// gives up after 5 s, so 10 s only trips when something is wrong.
	DefaultGatherTimeout = 10 * time.Second
	// DefaultOpenTimeout is how long an answered connection may take to open. WebTorrent browsers give up on
	// an offer after 50 s; a connection that has not opened in 30 s (ICE checks plus DTLS normally take well
	// under a second) will not.
	DefaultOpenTimeout = 30 * time.Second
)

func (c *Config) fillDefaults() error {
	if c.DataDir == "" {
		return fmt.Errorf("seeder: %w", ErrNoDataDir)
	}
	for _, u := range c.TrackerURLs {
		if err := checkTrackerURL(u); err != nil {
			return err
		}
	}
	if c.ListenAddr != "" {
		host, port, err := net.SplitHostPort(c.ListenAddr)
		if err != nil {
			return fmt.Errorf("seeder: %w: %q: %w", ErrBadListenAddr, c.ListenAddr, err)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil || (host != "" && net.ParseIP(host) == nil) {
			return fmt.Errorf("seeder: %w: %q", ErrBadListenAddr, c.ListenAddr)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.API == nil {
		c.API = NewAPI(c.Logger)
	}
	if c.MaxPeers <= 0 {
		c.MaxPeers = DefaultMaxPeers
	}
	if c.GatherTimeout <= 0 {
		c.GatherTimeout = DefaultGatherTimeout
	}
	if c.OpenTimeout <= 0 {
		c.OpenTimeout = DefaultOpenTimeout
	}
	if c.EngineLogLevel == nil {
		c.EngineLogLevel = slog.LevelWarn
	}
	return nil
}

// sctpRTOMax bounds pion's SCTP retransmission timeout as browsers' own SCTP stack bounds theirs: WebRTC's
// dcsctp (net/dcsctp/public/dcsctp_options.h) keeps it between 220 and 800 ms. pion's lies between a fixed
// 1 s minimum and 60 s, doubling at each timeout: a lost packet that no later packet reveals (the last of a
// burst) held a browser's download for a second or more, and a few losses in a row for many. Browsers do
// lose datagrams: a browser's socket drops them when its network thread falls behind (Linux counts them in
// Udp6 RcvbufErrors: about 35 per first view here, 700 to 930 per run of the crowd benchmark). With the bound
// below pion's minimum, the timeout is 800 ms every time.
const sctpRTOMax = 800 * time.Millisecond

// NewAPI returns the WebRTC API the seeder uses by default, logging pion's messages to logger:
//   - DetachDataChannels, so that data channels can be read and written as streams;
//   - mDNS disabled: a default browser hides its host candidates behind random .local names, and with
//     mDNS off pion ignores them and learns the browser's real address as a peer-reflexive candidate
//     when its checks arrive, which gives every connection a parseable IP:port;
//   - peer-reflexive candidates accepted without pion's default 1 s wait (that is how every such browser
//     connects, see above);
//   - loopback candidates gathered, for a gateway and browser on one machine;
//   - SCTP's retransmission timeout bounded by sctpRTOMax.
func NewAPI(logger *slog.Logger) *webrtc.API {
	var se webrtc.SettingEngine
	se.DetachDataChannels()
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetPrflxAcceptanceMinWait(0)
	se.SetIncludeLoopbackCandidate(true)
	se.SetSCTPRTOMax(sctpRTOMax)
	if logger != nil {
		se.LoggerFactory = pionLoggerFactory{logger.With(slog.String("component", "webrtc"))}
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}

// checkTrackerURL accepts ws:// and wss:// URLs with a host.
func checkTrackerURL(u string) error {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "ws" && pu.Scheme != "wss") || pu.Host == "" {
		return fmt.Errorf("seeder: %w: %q", ErrBadTrackerURL, u)
	}
	return nil
}
