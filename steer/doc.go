// Package steer owns DNS steering: it publishes the addresses a site's name resolves to, so that clients
// that cannot use P2P reach the origin in normal times and, in a flash crowd, the origin plus the
// cooperating servers ("helpers") that are ready and healthy, in proportion to their spare capacity.
//
// Publisher is the whole contract with the gateway's crowd logic: Set the complete address set of a name,
// Withdraw single addresses at once (a failing helper), TTL, the time a withdrawn address may still be
// used by clients that resolved it earlier, and AddTXT and RemoveTXT for the ACME DNS-01 challenges that let
// helpers get certificates for the site's name (_acme-challenge.<site>, several values at once, short TTL).
// Two backends implement it:
//
//   - Server, the default: an embedded authoritative DNS server (github.com/miekg/dns) for one zone, over
//     UDP and TCP. It answers A and AAAA from the current set, ordered by a weighted random draw so that a
//     helper comes first in a share of answers proportional to its weight; SOA (its serial grows with every
//     change) and NS at the apex; NXDOMAIN and NODATA with the SOA for negative caching; REFUSED for every
//     name outside its zone. It never recurses or forwards, so it is no open resolver. It can be a hidden
//     primary: it serves zone transfers (AXFR, and IXFR answered with the full zone) to allowed addresses
//     and sends NOTIFY to configured secondaries on every change.
//   - Updater, for an existing DNS service: RFC 2136 dynamic updates signed with TSIG, sent to a real
//     primary (BIND, Knot, PowerDNS). DNS has no weights, so that server orders answers its own way.
//
// It is named steer, not dns, so that it does not clash with miekg/dns, which it builds on. It imports nothing
// else of swarmgate's (a dependency rule, see internal/deptest).
package steer
