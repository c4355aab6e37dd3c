package seeder

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/swarmgate/swarmgate/tracker"
)

// peer is one browser's peer connection, from the answer to its offer until it closes.
type peer struct {
	s    *Seeder
	pc   *webrtc.PeerConnection
	log  *slog.Logger
	done chan struct{} // closed by close

	mu     sync.Mutex
	closed bool
	open   bool // its data channel opened and went to the engine
	conn   *dcConn
	timer  *time.Timer // closes the peer connection if it does not open in time; nil until set
}

// answer answers one relayed offer and sends the answer through c. It runs in its own goroutine.
func (s *Seeder) answer(ctx context.Context, c *tracker.Client, m *tracker.Message, log *slog.Logger) {
	log = log.With(slog.String("infohash", m.InfoHash.String()), slog.String("peer", m.PeerID.String()))
	p, err := s.newPeer(log)
	if err != nil {
		s.offersRefused.Add(1)
		log.Debug("seeder: offer not answered", slog.Any("err", err))
		return
	}
	answer, err := p.negotiate(ctx, m.Offer)
	if err == nil {
		err = c.SendAnswer(m.InfoHash, s.peerID, m.PeerID, m.OfferID, answer)
	}
	if err != nil {
		s.offersRefused.Add(1)
		log.Debug("seeder: answering failed", slog.Any("err", err))
		p.close("answer failed")
		return
	}
	s.offersAnswered.Add(1)
	log.Debug("seeder: answered offer")
}

// newPeer creates a peer connection and registers it, unless the seeder is closed or at MaxPeers.
func (s *Seeder) newPeer(log *slog.Logger) (*peer, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if n := len(s.peers) + s.creating; n >= s.cfg.MaxPeers {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w (%d)", ErrTooManyPeers, n)
	}
	s.creating++
	s.wg.Add(1) // done when the peer connection is closed; under s.mu, so never after Close has begun waiting
	s.mu.Unlock()

	pc, err := s.cfg.API.NewPeerConnection(webrtc.Configuration{ICEServers: s.cfg.ICEServers})
	s.mu.Lock()
	s.creating--
	if err != nil {
		s.mu.Unlock()
		s.wg.Done()
		return nil, fmt.Errorf("seeder: new peer connection: %w", err)
	}
	p := &peer{s: s, pc: pc, log: log, done: make(chan struct{})}
	s.peers[p] = struct{}{}
	closed := s.closed
	s.mu.Unlock()

	p.mu.Lock()
	if !p.closed { // Close may have closed it already
		p.timer = time.AfterFunc(s.cfg.OpenTimeout, func() {
			if !p.isOpen() {
				p.close("data channel did not open in time")
			}
		})
	}
	p.mu.Unlock()
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		log.Debug("seeder: peer connection state", slog.String("state", st.String()))
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			p.close("peer connection " + st.String())
		}
	})
	pc.OnDataChannel(p.onDataChannel)
	if closed { // Close began while the connection was being made, and did not see it
		p.close("seeder closing")
		return nil, ErrClosed
	}
	return p, nil
}

// negotiate sets the browser's offer, and returns the answer once ICE gathering has completed: WebTorrent
// does not trickle candidates, so the answer must carry them all.
func (p *peer) negotiate(ctx context.Context, rawOffer json.RawMessage) (json.RawMessage, error) {
	var offer webrtc.SessionDescription
	if err := json.Unmarshal(rawOffer, &offer); err != nil || offer.Type != webrtc.SDPTypeOffer {
		return nil, ErrBadOffer
	}
	if err := p.pc.SetRemoteDescription(offer); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return nil, fmt.Errorf("seeder: create answer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(answer); err != nil {
		return nil, fmt.Errorf("seeder: set local description: %w", err)
	}
	timeout := time.NewTimer(p.s.cfg.GatherTimeout)
	defer timeout.Stop()
	select {
	case <-gathered:
	case <-timeout.C:
		return nil, ErrGatherTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.done:
		return nil, ErrClosed
	}
	b, err := json.Marshal(p.pc.LocalDescription())
	if err != nil {
		return nil, fmt.Errorf("seeder: encode answer: %w", err)
	}
	return b, nil
}

// onDataChannel hands the browser's data channel to the engine once it opens. WebTorrent opens one channel
// per peer connection; any further channel is closed.
func (p *peer) onDataChannel(dc *webrtc.DataChannel) {
	dc.OnOpen(func() {
		p.mu.Lock()
		if p.closed || p.open {
			p.mu.Unlock()
			_ = dc.Close()
			return
		}
		p.open = true
		p.stopTimerLocked()
		p.mu.Unlock()

		rwc, err := dc.DetachWithDeadline()
		if err != nil {
			p.log.Error("seeder: cannot detach data channel; build Config.API with DetachDataChannels",
				slog.Any("err", err))
			p.close("detach failed")
			return
		}
		local, remote := p.addrs()
		// The association's limit is the browser's a=max-message-size (65,536 when its SDP has none).
		remoteMax := p.pc.SCTP().GetCapabilities().MaxMessageSize
		c := newDCConn(rwc, local, remote, &p.s.uploaded, remoteMax, func() { p.close("conn closed") })
		p.mu.Lock()
		closed := p.closed
		if !closed {
			p.conn = c
		}
		p.mu.Unlock()
		if closed {
			_ = c.Close()
			return
		}
		p.log.Debug("seeder: data channel open", slog.String("remote", remote.String()))
		if !p.s.ln.deliver(p.s.shape(c), p.done) {
			_ = c.Close()
		}
	})
}

// addrs returns the ICE candidates of the selected pair as the conn's addresses. With mDNS disabled the
// browser's side is a peer-reflexive IP:port; a remote that is not an IP (an mDNS name, when Config.API
// resolves them) is replaced by a unique address from the IPv6 documentation prefix, so that the engine,
// which drops peers without a parseable address, still serves it.
func (p *peer) addrs() (local, remote peerAddr) {
	local.ap = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	var remoteHost string
	var remotePort uint16
	if pair, err := p.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair(); err == nil && pair != nil {
		if a, err := netip.ParseAddr(pair.Local.Address); err == nil {
			local.ap = netip.AddrPortFrom(a.Unmap().WithZone(""), pair.Local.Port)
		}
		remoteHost, remotePort = pair.Remote.Address, pair.Remote.Port
	}
	if a, err := netip.ParseAddr(remoteHost); err == nil && remotePort != 0 {
		// Without a zone: the engine parses addresses with net.ParseIP, which rejects "fe80::1%eth0".
		remote.ap = netip.AddrPortFrom(a.Unmap().WithZone(""), remotePort)
		return local, remote
	}
	p.s.warnMDNS.Do(func() {
		p.s.log.Warn("seeder: a browser's address is not an IP; give Config.API mDNS disabled (see NewAPI)",
			slog.String("address", remoteHost))
	})
	var b [16]byte
	copy(b[:], []byte{0x20, 0x01, 0x0d, 0xb8})
	binary.BigEndian.PutUint64(b[8:], p.s.addrSeq.Add(1))
	remote.ap = netip.AddrPortFrom(netip.AddrFrom16(b), max(remotePort, 1))
	return local, remote
}

func (p *peer) stopTimerLocked() {
	if p.timer != nil {
		p.timer.Stop()
	}
}

func (p *peer) isOpen() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open && !p.closed
}

// close closes the peer connection, once; reason is logged.
func (p *peer) close(reason string) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	c := p.conn
	p.stopTimerLocked()
	p.mu.Unlock()
	close(p.done)
	p.log.Debug("seeder: closing peer connection", slog.String("reason", reason))

	s := p.s
	s.mu.Lock()
	delete(s.peers, p)
	s.mu.Unlock()
	// In a goroutine of its own: close may be called from pion's callbacks, where closing the peer
	// connection would deadlock.
	go func() {
		defer s.wg.Done()
		if c != nil {
			_ = c.Close() // its onClose finds the peer closed
		}
		if err := p.pc.GracefulClose(); err != nil {
			p.log.Debug("seeder: closing peer connection", slog.Any("err", err))
		}
	}()
}
