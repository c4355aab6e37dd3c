package seeder

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"

	alog "github.com/anacrolix/log"
	"github.com/anacrolix/torrent"
)

// listenBitTorrent opens TCP and uTP sockets on Config.ListenAddr (the uTP one on the TCP one's port) and
// gives them to the engine to accept ordinary BitTorrent peers; it dials peers over TCP. The seeder opens them
// itself rather than through the engine's ListenHost/ListenPort: the engine always tries both IP families, and
// restricting it to the family of an address like 127.0.0.1 (DisableIPv6) would also make it refuse every
// browser whose address is IPv6.
func (s *Seeder) listenBitTorrent(addr string, engineLog slog.Handler) error {
	tl, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("seeder: listen tcp %s: %w", addr, err)
	}
	host, _, _ := net.SplitHostPort(addr)
	port := tl.Addr().(*net.TCPAddr).Port
	logger := alog.NewLogger()
	logger.SetHandlers(alog.SlogHandlerAsHandler{SlogHandler: engineLog})
	us, err := torrent.NewUtpSocket("udp", net.JoinHostPort(host, strconv.Itoa(port)), nil, logger)
	if err != nil {
		_ = tl.Close()
		return fmt.Errorf("seeder: listen utp %s: %w", addr, err)
	}
	s.sockets = []io.Closer{tl, us}
	s.cl.AddListener(tl)
	s.cl.AddListener(us)
	// Outgoing connections (a helper fetching from the gateway and other helpers) use TCP only. The engine
	// dials every dialer at once and keeps whichever connects first; when uTP won, a 10 MB fetch between two
	// loopback seeders stalled for 1-3 s at a time (uTP's retransmission timeouts), while TCP took 0.3 s
	// every time. The uTP socket still accepts peers that dial it.
	s.cl.AddDialer(torrent.NetworkDialer{Network: "tcp", Dialer: &net.Dialer{}})
	return nil
}
