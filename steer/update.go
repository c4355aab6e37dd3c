package steer

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// UpdaterConfig configures an Updater. Zero fields take the defaults below; Server, Zone, KeyName and
// Secret are required.
type UpdaterConfig struct {
	// Server is the primary DNS server that takes the updates, "host:port".
	Server string
	// Zone is the zone the published names belong to, as the server knows it (the update's zone section).
	Zone string
	// KeyName is the TSIG key's name as configured on the server (BIND: key "name" { ... }).
	KeyName string
	// Secret is the TSIG key's secret, base64 as in BIND's key statement.
	Secret string
	// Algorithm is the TSIG algorithm: "hmac-sha256" (default), "hmac-sha384" or "hmac-sha512".
	Algorithm string
	// TTL is the time to live of published records, in whole seconds. Default DefaultTTL.
	TTL time.Duration
	// Net is the transport, "tcp" (default: an update of many addresses needs no truncation handling) or
	// "udp".
	Net string
	// Timeout bounds one update, exchange included. Default DefaultUpdateTimeout.
	Timeout time.Duration
	// Logger receives the updater's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultUpdateTimeout bounds one update when UpdaterConfig.Timeout is zero: a primary answers in
// milliseconds, and the crowd logic must not hang on an unreachable one.
const DefaultUpdateTimeout = 5 * time.Second

// tsigFudge is the clock skew the TSIG signature tolerates, in seconds; 300 is RFC 8945's recommendation
// and what BIND and nsupdate use.
const tsigFudge = 300

// Updater publishes through RFC 2136 dynamic updates signed with TSIG to a real primary DNS server (BIND,
// Knot, PowerDNS), which its secondaries then carry. Each Set or Withdraw is one atomic UPDATE message.
// DNS has no weights: the server orders its answers its own way (BIND cycles or shuffles them), so
// Weighted.Weight only has to be valid here.
type Updater struct {
	server  string
	zone    string
	keyName string
	algo    string
	ttl     uint32
	client  *dns.Client
	timeout time.Duration
	log     *slog.Logger
}

var _ Publisher = (*Updater)(nil)

// NewUpdater checks cfg. It does no I/O: the first Set or Withdraw finds out whether the server and key
// work.
func NewUpdater(cfg UpdaterConfig) (*Updater, error) {
	zone, err := canonicalZone(cfg.Zone)
	if err != nil {
		return nil, err
	}
	if host, port, err := net.SplitHostPort(cfg.Server); err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("steer: %w: Server %q is not host:port", ErrBadConfig, cfg.Server)
	}
	keyName := dns.CanonicalName(cfg.KeyName)
	if _, ok := dns.IsDomainName(keyName); cfg.KeyName == "" || !ok || keyName == "." {
		return nil, fmt.Errorf("steer: %w: KeyName %q is not a domain name", ErrBadConfig, cfg.KeyName)
	}
	if raw, err := base64.StdEncoding.DecodeString(cfg.Secret); err != nil || len(raw) == 0 {
		return nil, fmt.Errorf("steer: %w: Secret is not base64", ErrBadConfig)
	}
	algo := dns.HmacSHA256
	switch cfg.Algorithm {
	case "", "hmac-sha256", dns.HmacSHA256:
	case "hmac-sha384", dns.HmacSHA384:
		algo = dns.HmacSHA384
	case "hmac-sha512", dns.HmacSHA512:
		algo = dns.HmacSHA512
	default:
		return nil, fmt.Errorf("steer: %w: Algorithm %q is not hmac-sha256, hmac-sha384 or hmac-sha512", ErrBadConfig, cfg.Algorithm)
	}
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < time.Second || ttl > maxTTL {
		return nil, fmt.Errorf("steer: %w: TTL %s is not between 1s and 2^31-1 s", ErrBadConfig, cfg.TTL)
	}
	netw := cfg.Net
	if netw == "" {
		netw = "tcp"
	}
	if netw != "tcp" && netw != "udp" {
		return nil, fmt.Errorf("steer: %w: Net %q is not tcp or udp", ErrBadConfig, cfg.Net)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultUpdateTimeout
	}
	if timeout < 0 {
		return nil, fmt.Errorf("steer: %w: Timeout %s is negative", ErrBadConfig, cfg.Timeout)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Updater{
		server:  cfg.Server,
		zone:    zone,
		keyName: keyName,
		algo:    algo,
		ttl:     uint32(ttl / time.Second),
		client: &dns.Client{
			Net:        netw,
			Timeout:    timeout,
			TsigSecret: map[string]string{keyName: cfg.Secret},
		},
		timeout: timeout,
		log:     log.With(slog.String("component", "dns-update"), slog.String("zone", zone), slog.String("server", cfg.Server)),
	}, nil
}

// TTL is the time to live of published records (UpdaterConfig.TTL).
func (u *Updater) TTL() time.Duration { return time.Duration(u.ttl) * time.Second }

// Set replaces name's A and AAAA RRsets with addrs in one update: delete both RRsets, add the new records.
func (u *Updater) Set(ctx context.Context, name string, addrs []Weighted) error {
	n, err := canonicalName(u.zone, name)
	if err != nil {
		return err
	}
	set, err := canonicalSet(addrs)
	if err != nil {
		return fmt.Errorf("%w (name %s)", err, n)
	}
	m := u.newUpdate()
	m.RemoveRRset([]dns.RR{
		&dns.A{Hdr: dns.RR_Header{Name: n, Rrtype: dns.TypeA}},
		&dns.AAAA{Hdr: dns.RR_Header{Name: n, Rrtype: dns.TypeAAAA}},
	})
	rrs := make([]dns.RR, 0, len(set))
	for _, w := range set {
		rrs = append(rrs, addrRR(n, w.Addr, u.ttl))
	}
	m.Insert(rrs)
	if err := u.send(ctx, m); err != nil {
		return fmt.Errorf("steer: set %s at %s: %w", n, u.server, err)
	}
	u.log.Info("records set", slog.String("name", n), slog.Int("addrs", len(set)))
	return nil
}

// Withdraw deletes the records of addrs from name in one update; the server ignores absent ones.
func (u *Updater) Withdraw(ctx context.Context, name string, addrs ...netip.Addr) error {
	n, err := canonicalName(u.zone, name)
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		return nil
	}
	rrs := make([]dns.RR, 0, len(addrs))
	for _, a := range addrs {
		ca, err := canonicalAddr(a)
		if err != nil {
			return fmt.Errorf("%w (name %s)", err, n)
		}
		rrs = append(rrs, addrRR(n, ca, 0))
	}
	m := u.newUpdate()
	m.Remove(rrs)
	if err := u.send(ctx, m); err != nil {
		return fmt.Errorf("steer: withdraw from %s at %s: %w", n, u.server, err)
	}
	u.log.Info("records withdrawn", slog.String("name", n), slog.Int("addrs", len(addrs)))
	return nil
}

// AddTXT adds value to name's TXT records in one update; the server ignores a value already there.
func (u *Updater) AddTXT(ctx context.Context, name, value string) error {
	n, err := u.txtName(name, value)
	if err != nil {
		return err
	}
	m := u.newUpdate()
	m.Insert([]dns.RR{txtRR(n, value, uint32(TXTTTL/time.Second))})
	if err := u.send(ctx, m); err != nil {
		return fmt.Errorf("steer: add TXT to %s at %s: %w", n, u.server, err)
	}
	u.log.Info("TXT added", slog.String("name", n))
	return nil
}

// RemoveTXT deletes value from name's TXT records in one update; the server ignores an absent one.
func (u *Updater) RemoveTXT(ctx context.Context, name, value string) error {
	n, err := u.txtName(name, value)
	if err != nil {
		return err
	}
	m := u.newUpdate()
	m.Remove([]dns.RR{txtRR(n, value, 0)})
	if err := u.send(ctx, m); err != nil {
		return fmt.Errorf("steer: remove TXT from %s at %s: %w", n, u.server, err)
	}
	u.log.Info("TXT removed", slog.String("name", n))
	return nil
}

func (u *Updater) txtName(name, value string) (string, error) {
	n, err := canonicalName(u.zone, name)
	if err != nil {
		return "", err
	}
	if err := checkTXT(value); err != nil {
		return "", fmt.Errorf("%w (name %s)", err, n)
	}
	return n, nil
}

func (u *Updater) newUpdate() *dns.Msg {
	m := new(dns.Msg)
	m.SetUpdate(u.zone)
	return m
}

// send signs and sends an update and turns the server's refusal into one of the package's errors.
func (u *Updater) send(ctx context.Context, m *dns.Msg) error {
	m.SetTsig(u.keyName, u.algo, tsigFudge, time.Now().Unix())
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	resp, _, err := u.client.ExchangeContext(ctx, m, u.server)
	if resp == nil {
		return err // no answer: network error or timeout
	}
	return updateError(resp, err)
}

// updateError interprets the reply to a signed update; verifyErr is the client's check of the reply's
// signature. A server that could not verify our signature replies unsigned, with the reason in the TSIG
// error field, so that field and the RCODE come first.
func updateError(resp *dns.Msg, verifyErr error) error {
	tsigErr := uint16(0)
	if t := resp.IsTsig(); t != nil {
		tsigErr = t.Error
	}
	switch tsigErr {
	case dns.RcodeSuccess:
	case dns.RcodeBadSig:
		return ErrBadSig
	case dns.RcodeBadKey:
		return ErrBadKey
	case dns.RcodeBadTime:
		return ErrBadTime
	default:
		return fmt.Errorf("%w: TSIG error %s", ErrUpdateFailed, rcodeName(int(tsigErr)))
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeRefused:
		return ErrRefused
	case dns.RcodeNotAuth:
		return ErrNotAuth
	case dns.RcodeNotZone:
		return ErrNotZone
	default:
		return fmt.Errorf("%w: %s", ErrUpdateFailed, rcodeName(resp.Rcode))
	}
	if resp.IsTsig() == nil {
		return ErrUnsigned
	}
	if verifyErr != nil {
		return fmt.Errorf("%w: %w", ErrUnsigned, verifyErr)
	}
	return nil
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}
