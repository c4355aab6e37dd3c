package steer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"
)

// Limits of the embedded server.
const (
	// maxTCPConns bounds concurrent TCP connections. DNS over TCP is rare here (truncated answers, zone
	// transfers); each connection holds a goroutine and a descriptor, and the machine's 20,000 descriptors
	// are shared with the gateway's browsers, so 256 is plenty and cannot starve them. UDP is unaffected.
	maxTCPConns = 256
	// bindAttempts bounds the retries when port 0 gave UDP a port whose TCP twin is taken.
	bindAttempts = 10
	// shutdownTimeout bounds the wait for in-flight queries when Run's context ends. Reads and writes
	// time out after 2 s (miekg/dns defaults), so this only trips on a bug.
	shutdownTimeout = 5 * time.Second
)

// Server is the embedded authoritative DNS server for one zone, and a Publisher. Build it with
// NewServer, serve with Run, publish with Set and Withdraw (before or while Run runs).
type Server struct {
	z    *zoneConfig
	log  *slog.Logger
	pick *picker

	udp  net.PacketConn
	tcp  net.Listener
	addr netip.AddrPort

	mu      sync.Mutex // serializes changes; readers use snap
	snap    atomic.Pointer[snapshot]
	changed chan struct{} // capacity 1: a change the notifier has not sent yet

	state     sync.Mutex
	running   bool
	closed    bool
	closeOnce sync.Once
}

var _ Publisher = (*Server)(nil)

// NewServer checks cfg and binds its UDP and TCP sockets, so Addr is known and a taken port fails here.
// The server answers once Run is called. Call Close if Run never is.
func NewServer(cfg ServerConfig) (*Server, error) {
	z, err := cfg.check()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		z:       z,
		log:     log.With(slog.String("component", "dns"), slog.String("zone", z.origin)),
		pick:    newPicker(cfg.Rand),
		changed: make(chan struct{}, 1),
	}
	// The serial starts at the Unix time, so a restarted server's serial is above the one its
	// secondaries hold (they ignore a zone whose serial went back) as long as it changed less than once
	// a second on average. It fits a uint32 until 2106.
	s.snap.Store(newSnapshot(z, uint32(time.Now().Unix()), map[string][]Weighted{}, map[string][]string{}))
	s.changed <- struct{}{} // NOTIFY secondaries once Run starts

	if s.udp, s.tcp, err = listenPair(z.addr); err != nil {
		return nil, fmt.Errorf("steer: listen on %s: %w", z.addr, err)
	}
	s.addr = s.udp.LocalAddr().(*net.UDPAddr).AddrPort()
	return s, nil
}

// listenPair binds UDP and TCP on the same port. With port 0 the kernel picks the UDP port, and the TCP
// bind is retried on another if that port is taken for TCP.
func listenPair(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for attempt := 1; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		p := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if n, _ := strconv.Atoi(port); n != 0 || attempt >= bindAttempts {
			return nil, nil, err
		}
	}
}

// Addr is the address the server listens on, UDP and TCP alike.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Zone is the zone's origin, canonical (lowercase, fully qualified).
func (s *Server) Zone() string { return s.z.origin }

// Serial is the zone's current SOA serial. It grows by one with every change of the published addresses
// and TXT values.
func (s *Server) Serial() uint32 { return s.snap.Load().serial }

// TTL is the time to live of published records (ServerConfig.TTL).
func (s *Server) TTL() time.Duration { return time.Duration(s.z.ttl) * time.Second }

// Run serves DNS over UDP and TCP until ctx ends, then waits for in-flight queries and releases the
// sockets. It also sends NOTIFYs to ServerConfig.NotifyTo at start and after changes. It returns nil after
// ctx ends, or the error that stopped a listener. It may be called once.
func (s *Server) Run(ctx context.Context) error {
	s.state.Lock()
	switch {
	case s.closed:
		s.state.Unlock()
		return fmt.Errorf("steer: run: %w", ErrClosed)
	case s.running:
		s.state.Unlock()
		return fmt.Errorf("steer: run: %w", ErrRunning)
	}
	s.running = true
	s.state.Unlock()
	defer s.Close()

	handler := dns.HandlerFunc(s.serveDNS)
	servers := []*dns.Server{
		{PacketConn: s.udp, Handler: handler, UDPSize: maxUDPSize},
		{Listener: netutil.LimitListener(s.tcp, maxTCPConns), Handler: handler},
	}
	type served struct {
		started chan struct{}
		done    chan error
	}
	runs := make([]served, len(servers))
	for i, srv := range servers {
		r := served{started: make(chan struct{}), done: make(chan error, 1)}
		runs[i] = r
		srv.NotifyStartedFunc = func() { close(r.started) }
		go func() { r.done <- srv.ActivateAndServe() }()
	}
	// Each server either starts or fails at once; only started ones can (and must) be shut down.
	var runErr error
	started := make([]bool, len(servers))
	for i, r := range runs {
		select {
		case <-r.started:
			started[i] = true
		case err := <-r.done:
			runErr = errors.Join(runErr, err)
		}
	}

	var notifier sync.WaitGroup
	nctx, stopNotifier := context.WithCancel(ctx)
	if runErr == nil {
		s.log.Info("DNS server listening", slog.String("addr", s.addr.String()))
		if len(s.z.notify) > 0 {
			notifier.Go(func() { s.notifyLoop(nctx) })
		}
		select {
		case <-ctx.Done():
		case err := <-runs[0].done:
			runErr, started[0] = err, false
		case err := <-runs[1].done:
			runErr, started[1] = err, false
		}
	}
	stopNotifier()
	notifier.Wait()

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	for i, srv := range servers {
		if !started[i] {
			continue
		}
		if err := srv.ShutdownContext(sctx); err != nil {
			runErr = errors.Join(runErr, err)
		}
		select {
		case err := <-runs[i].done:
			runErr = errors.Join(runErr, err)
		case <-sctx.Done(): // ShutdownContext reported it; do not hang on a stuck handler
		}
	}
	if runErr != nil {
		return fmt.Errorf("steer: serve %s: %w", s.addr, runErr)
	}
	s.log.Info("DNS server stopped")
	return nil
}

// Close releases the sockets. Run does so itself when it returns; Close is for a server whose Run was
// never called, and must not be called while Run runs (end Run's context instead).
func (s *Server) Close() error {
	s.state.Lock()
	s.closed = true
	s.state.Unlock()
	var err error
	s.closeOnce.Do(func() {
		err = errors.Join(s.udp.Close(), s.tcp.Close())
		if errors.Is(err, net.ErrClosed) { // miekg/dns closed them on shutdown
			err = nil
		}
	})
	return err
}

func (s *Server) notifyLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
			s.z.notifyAll(ctx, s.snap.Load().serial, s.log)
		}
	}
}

// serveDNS is the handler for both transports.
func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	snap := s.snap.Load()
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	if req.Opcode == dns.OpcodeQuery && len(req.Question) == 1 {
		if t := req.Question[0].Qtype; t == dns.TypeAXFR || t == dns.TypeIXFR {
			s.serveTransfer(w, req, snap, udp)
			return
		}
	}
	if err := w.WriteMsg(s.z.respond(req, snap, s.pick.pick, udp)); err != nil {
		s.log.Debug("write answer", slog.String("client", w.RemoteAddr().String()), slog.Any("err", err))
	}
}

func (s *Server) serveTransfer(w dns.ResponseWriter, req *dns.Msg, snap *snapshot, udp bool) {
	q := req.Question[0]
	var remote netip.Addr
	if ap, err := netip.ParseAddrPort(w.RemoteAddr().String()); err == nil {
		remote = ap.Addr()
	}
	log := s.log.With(slog.String("client", remote.String()), slog.String("type", dns.TypeToString[q.Qtype]))
	refuse := func(why string) {
		log.Info("zone transfer refused", slog.String("reason", why))
		resp := new(dns.Msg)
		resp.SetRcode(req, dns.RcodeRefused)
		_ = w.WriteMsg(resp)
	}
	switch {
	case q.Qclass != dns.ClassINET || dns.CanonicalName(q.Name) != s.z.origin:
		refuse("not this zone")
	case !s.z.transferAllowed(remote):
		refuse("client not in TransferFrom")
	case udp && q.Qtype == dns.TypeIXFR:
		// RFC 1995 2: over UDP, the single current SOA tells the client to transfer over TCP if it is behind.
		resp := new(dns.Msg)
		resp.SetReply(req)
		resp.Authoritative = true
		resp.Answer = []dns.RR{s.z.soaRR(snap.serial, infraTTL)}
		_ = w.WriteMsg(resp)
	case udp:
		refuse("AXFR needs TCP")
	default:
		if err := s.z.transfer(w, req, snap); err != nil {
			log.Warn("zone transfer failed", slog.Any("err", err))
			return
		}
		log.Info("zone transferred", slog.Uint64("serial", uint64(snap.serial)))
	}
}

// Set makes addrs the complete address set of name. Changed addresses take effect for the next query and
// bump the SOA serial (and NOTIFY secondaries); a change of weights alone does neither, since zone data
// carries no weights.
func (s *Server) Set(ctx context.Context, name string, addrs []Weighted) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("steer: set %s: %w", name, err)
	}
	n, err := s.publishable(name)
	if err != nil {
		return err
	}
	set, err := canonicalSet(addrs)
	if err != nil {
		return fmt.Errorf("%w (name %s)", err, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	if _, exists := old.records[n]; !exists && len(set) > 0 && len(old.records)+len(old.txt) >= MaxNames {
		return fmt.Errorf("steer: set %s: %w (%d)", n, ErrTooManyNames, MaxNames)
	}
	s.replace(old, n, set)
	return nil
}

// Withdraw removes addrs from name's address set at once; removing the last one removes the name.
func (s *Server) Withdraw(ctx context.Context, name string, addrs ...netip.Addr) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("steer: withdraw from %s: %w", name, err)
	}
	n, err := s.publishable(name)
	if err != nil {
		return err
	}
	drop := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		ca, err := canonicalAddr(a)
		if err != nil {
			return fmt.Errorf("%w (name %s)", err, n)
		}
		drop[ca] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	set := slices.DeleteFunc(slices.Clone(old.records[n]), func(w Weighted) bool { return drop[w.Addr] })
	s.replace(old, n, set)
	return nil
}

func (s *Server) publishable(name string) (string, error) {
	n, err := canonicalName(s.z.origin, name)
	if err != nil {
		return "", err
	}
	if _, ok := s.z.nsAddrs[n]; ok {
		return "", fmt.Errorf("steer: %w: %s", ErrReservedName, n)
	}
	return n, nil
}

// replace publishes set as name's addresses on top of old. Callers hold s.mu.
func (s *Server) replace(old *snapshot, name string, set []Weighted) {
	prev := old.records[name]
	sameAddrs := slices.EqualFunc(prev, set, func(a, b Weighted) bool { return a.Addr == b.Addr })
	if sameAddrs && slices.Equal(prev, set) {
		return
	}
	records := maps.Clone(old.records)
	if len(set) == 0 {
		delete(records, name)
	} else {
		records[name] = set
	}
	if sameAddrs {
		s.snap.Store(newSnapshot(s.z, old.serial, records, old.txt))
		s.log.Debug("weights changed", slog.String("name", name))
		return
	}
	s.commit(newSnapshot(s.z, old.serial+1, records, old.txt))
	s.log.Info("records changed", slog.String("name", name), slog.Int("addrs", len(set)), slog.Uint64("serial", uint64(old.serial+1)))
}

// commit makes snap, whose zone data changed, the served one and has secondaries notified. Callers hold s.mu.
func (s *Server) commit(snap *snapshot) {
	s.snap.Store(snap)
	select {
	case s.changed <- struct{}{}:
	default: // a NOTIFY is pending already; it will carry the newest serial
	}
}

// AddTXT adds value to name's TXT records; it is answered from the next query on.
func (s *Server) AddTXT(ctx context.Context, name, value string) error {
	n, err := s.txtName(ctx, "add TXT to", name, value)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	values := old.txt[n]
	i, found := slices.BinarySearch(values, value)
	switch {
	case found:
		return nil
	case len(values) >= MaxTXTPerName:
		return fmt.Errorf("steer: add TXT to %s: %w (%d)", n, ErrTooManyTXT, MaxTXTPerName)
	case len(values) == 0 && len(old.records)+len(old.txt) >= MaxNames:
		return fmt.Errorf("steer: add TXT to %s: %w (%d)", n, ErrTooManyNames, MaxNames)
	}
	txt := maps.Clone(old.txt)
	txt[n] = slices.Insert(slices.Clone(values), i, value)
	s.commit(newSnapshot(s.z, old.serial+1, old.records, txt))
	s.log.Info("TXT added", slog.String("name", n), slog.Int("values", len(txt[n])), slog.Uint64("serial", uint64(old.serial+1)))
	return nil
}

// RemoveTXT removes value from name's TXT records; removing the last one removes the name.
func (s *Server) RemoveTXT(ctx context.Context, name, value string) error {
	n, err := s.txtName(ctx, "remove TXT from", name, value)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	i, found := slices.BinarySearch(old.txt[n], value)
	if !found {
		return nil
	}
	txt := maps.Clone(old.txt)
	if rest := slices.Delete(slices.Clone(old.txt[n]), i, i+1); len(rest) > 0 {
		txt[n] = rest
	} else {
		delete(txt, n)
	}
	s.commit(newSnapshot(s.z, old.serial+1, old.records, txt))
	s.log.Info("TXT removed", slog.String("name", n), slog.Int("values", len(txt[n])), slog.Uint64("serial", uint64(old.serial+1)))
	return nil
}

// txtName checks the arguments of AddTXT and RemoveTXT and returns the canonical name.
func (s *Server) txtName(ctx context.Context, op, name, value string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("steer: %s %s: %w", op, name, err)
	}
	n, err := s.publishable(name)
	if err != nil {
		return "", err
	}
	if err := checkTXT(value); err != nil {
		return "", fmt.Errorf("%w (name %s)", err, n)
	}
	return n, nil
}
