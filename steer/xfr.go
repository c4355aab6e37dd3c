package steer

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// Zone transfer and NOTIFY limits.
const (
	// xfrChunk is the records per zone-transfer message. Our largest record (a 254-byte name with an AAAA)
	// takes under 300 bytes uncompressed, so 100 of them stay far below the 64 KiB a TCP DNS message holds.
	xfrChunk = 100
	// notifyTimeout is how long one NOTIFY waits for its acknowledgement; secondaries answer in
	// milliseconds unless the packet was lost.
	notifyTimeout = 2 * time.Second
	// notifyAttempts bounds the NOTIFYs per secondary per change (RFC 1996 4.7 retries a lost one); a
	// secondary that misses them all still refreshes after the SOA's Refresh.
	notifyAttempts = 3
)

// zoneRRs returns the zone in transfer order, without the closing SOA: SOA, NS, the name servers'
// addresses, then every published address (all of them, unweighted: secondaries cannot weigh), then every
// TXT value.
func (z *zoneConfig) zoneRRs(s *snapshot) []dns.RR {
	rrs := []dns.RR{z.soaRR(s.serial, infraTTL)}
	rrs = append(rrs, z.nsRRs(z.origin)...)
	rrs = append(rrs, z.glue()...)
	names := make([]string, 0, len(s.records))
	for n := range s.records {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		for _, w := range s.records[n] {
			rrs = append(rrs, addrRR(n, w.Addr, z.ttl))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(s.txt)) {
		for _, v := range s.txt[n] {
			rrs = append(rrs, txtRR(n, v, uint32(TXTTTL/time.Second)))
		}
	}
	return rrs
}

// serialAtLeast compares serials in RFC 1982 arithmetic: whether a is b or newer.
func serialAtLeast(a, b uint32) bool { return int32(a-b) >= 0 }

// transfer answers an allowed AXFR or IXFR over TCP with the zone from s. An IXFR from a secondary
// that is up to date gets the single SOA (RFC 1995 4); any other IXFR gets the whole zone in AXFR form,
// which RFC 1995 allows a server without change history to send.
func (z *zoneConfig) transfer(w dns.ResponseWriter, req *dns.Msg, s *snapshot) error {
	if req.Question[0].Qtype == dns.TypeIXFR && len(req.Ns) == 1 {
		if theirs, ok := req.Ns[0].(*dns.SOA); ok && serialAtLeast(theirs.Serial, s.serial) {
			resp := new(dns.Msg)
			resp.SetReply(req)
			resp.Authoritative = true
			resp.Answer = []dns.RR{z.soaRR(s.serial, infraTTL)}
			return w.WriteMsg(resp)
		}
	}
	rrs := append(z.zoneRRs(s), z.soaRR(s.serial, infraTTL))
	for chunk := range slices.Chunk(rrs, xfrChunk) {
		resp := new(dns.Msg)
		resp.SetReply(req)
		resp.Authoritative = true
		resp.Compress = true
		resp.Answer = chunk
		if err := w.WriteMsg(resp); err != nil {
			return err
		}
	}
	return nil
}

// transferAllowed reports whether a zone transfer may go to the client at remote.
func (z *zoneConfig) transferAllowed(remote netip.Addr) bool {
	remote = remote.Unmap()
	for _, p := range z.transferFrom {
		if p.Contains(remote) {
			return true
		}
	}
	return false
}

// notifyAll sends a NOTIFY for the zone with the given serial to every secondary, each retried up to
// notifyAttempts times, and logs those that never acknowledged. It returns early when ctx ends.
func (z *zoneConfig) notifyAll(ctx context.Context, serial uint32, log *slog.Logger) {
	c := &dns.Client{Net: "udp", Timeout: notifyTimeout}
	for _, to := range z.notify {
		var err error
		for attempt := 0; attempt < notifyAttempts && ctx.Err() == nil; attempt++ {
			if err = z.notifyOne(ctx, c, to, serial); err == nil {
				break
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Warn("NOTIFY not acknowledged", slog.String("secondary", to.String()), slog.Uint64("serial", uint64(serial)), slog.Any("err", err))
		} else {
			log.Debug("NOTIFY acknowledged", slog.String("secondary", to.String()), slog.Uint64("serial", uint64(serial)))
		}
	}
}

func (z *zoneConfig) notifyOne(ctx context.Context, c *dns.Client, to netip.AddrPort, serial uint32) error {
	m := new(dns.Msg)
	m.SetNotify(z.origin)
	m.Answer = []dns.RR{z.soaRR(serial, infraTTL)} // RFC 1996 3.7: a hint of the new serial
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	resp, _, err := c.ExchangeContext(ctx, m, to.String())
	if err != nil {
		return err
	}
	if resp.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("answered %s", dns.RcodeToString[resp.Rcode])
	}
	return nil
}
