package gateway

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/pion/logging"
	"github.com/pion/turn/v4"
)

// startSTUN serves STUN binding requests on a UDP address, so that browsers learn their public address from the
// site's own server instead of a third party's. It relays nothing: TURN needs credentials, which the
// operator configures on a TURN server of their own (Config.ICEServers).
func startSTUN(addr string, log *slog.Logger) (*turn.Server, *net.UDPAddr, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("gateway: stun listen %s: %w", addr, err)
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	srv, err := turn.NewServer(turn.ServerConfig{
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: pc}},
		LoggerFactory:     lf,
		Realm:             "swarmgate",
	})
	if err != nil {
		pc.Close()
		return nil, nil, fmt.Errorf("gateway: stun: %w", err)
	}
	log.Info("gateway: STUN server", slog.String("addr", pc.LocalAddr().String()))
	return srv, pc.LocalAddr().(*net.UDPAddr), nil
}
