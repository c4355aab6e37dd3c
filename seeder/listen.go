package seeder

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
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
	s.cl.AddListener(shapedListener{tl, s.shape})
	s.cl.AddListener(shapedListener{us, s.shape})
	// Outgoing connections (a helper fetching from the gateway and other helpers) use TCP only. The engine
	// dials every dialer at once and keeps whichever connects first; when uTP won, a 10 MB fetch between two
	// loopback seeders stalled for 1-3 s at a time (uTP's retransmission timeouts), while TCP took 0.3 s
	// every time. The uTP socket still accepts peers that dial it.
	//
	// A seeder listening on one address dials from it too: the peer then sees the address it knows this
	// machine by (a site favours its helpers' addresses on its uplink while they fetch).
	d := &net.Dialer{}
	if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
		d.LocalAddr = &net.TCPAddr{IP: ip.AsSlice()}
	}
	s.cl.AddDialer(shapedDialer{torrent.NetworkDialer{Network: "tcp", Dialer: d}, s.shape})
	return nil
}

// shape applies Config.Shape to a peer connection.
func (s *Seeder) shape(c net.Conn) net.Conn {
	if s.cfg.Shape == nil {
		return c
	}
	return s.cfg.Shape(c)
}

// shapedListener applies Config.Shape to the connections it accepts.
type shapedListener struct {
	torrent.Listener
	shape func(net.Conn) net.Conn
}

func (l shapedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.shape(c), nil
}

// shapedDialer applies Config.Shape to the connections it dials.
type shapedDialer struct {
	torrent.NetworkDialer
	shape func(net.Conn) net.Conn
}

func (d shapedDialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := d.NetworkDialer.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return d.shape(c), nil
}
