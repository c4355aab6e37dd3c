package steer

import "errors"

// Errors of the package. Returned errors wrap them with context and the "steer:" prefix; test them with
// errors.Is.
var (
	// ErrBadZone means a zone origin is empty, not a valid domain name, or the root.
	ErrBadZone = errors.New("invalid zone")
	// ErrBadName means a name to publish is not a valid host name (letters, digits, '-' and '_' labels).
	ErrBadName = errors.New("invalid name")
	// ErrOutsideZone means a name to publish is not in the zone.
	ErrOutsideZone = errors.New("name outside the zone")
	// ErrReservedName means a name to publish is one of the zone's own name servers, whose addresses come
	// from the configuration.
	ErrReservedName = errors.New("name is a name server of the zone")
	// ErrBadAddr means an address is invalid (the zero netip.Addr) or has a zone (fe80::1%eth0).
	ErrBadAddr = errors.New("invalid address")
	// ErrDuplicateAddr means an address appears twice in one set.
	ErrDuplicateAddr = errors.New("duplicate address")
	// ErrZeroWeight means an address has weight 0; leave it out of the set to stop publishing it.
	ErrZeroWeight = errors.New("weight must be positive")
	// ErrTooManyAddrs means a set holds more than MaxAddrsPerName addresses.
	ErrTooManyAddrs = errors.New("too many addresses for one name")
	// ErrTooManyNames means publishing one more name would exceed MaxNames.
	ErrTooManyNames = errors.New("too many names in the zone")
	// ErrBadTXT means a TXT value is empty, longer than MaxTXTLen, or holds other than printable ASCII
	// without space, quote and backslash.
	ErrBadTXT = errors.New("invalid TXT value")
	// ErrTooManyTXT means a name already holds MaxTXTPerName TXT values.
	ErrTooManyTXT = errors.New("too many TXT values for one name")
	// ErrBadConfig means a configuration field is invalid; the message names it.
	ErrBadConfig = errors.New("invalid configuration")
	// ErrRunning is returned by a second call to Server.Run.
	ErrRunning = errors.New("already running")
	// ErrClosed is returned by Server.Run after Close.
	ErrClosed = errors.New("closed")

	// ErrBadSig means the DNS server rejected the update's TSIG signature (TSIG error BADSIG): the secret or
	// algorithm does not match the server's key of that name.
	ErrBadSig = errors.New("server rejected the TSIG signature (BADSIG): wrong secret or algorithm")
	// ErrBadKey means the DNS server has no TSIG key of that name and algorithm (TSIG error BADKEY).
	ErrBadKey = errors.New("server does not know the TSIG key (BADKEY): wrong key name or algorithm")
	// ErrBadTime means the DNS server found the update's time outside the TSIG fudge (TSIG error BADTIME):
	// the clocks of the two machines disagree.
	ErrBadTime = errors.New("server rejected the TSIG time (BADTIME): clock skew")
	// ErrRefused means the DNS server refused the update (REFUSED): its update policy does not grant the
	// key this name and type, or it accepts no updates for the zone.
	ErrRefused = errors.New("server refused the update (REFUSED)")
	// ErrNotAuth means the DNS server is not authoritative for the zone, or rejected the key (NOTAUTH).
	ErrNotAuth = errors.New("server is not authoritative or rejected the key (NOTAUTH)")
	// ErrNotZone means the DNS server found a name of the update outside the zone (NOTZONE).
	ErrNotZone = errors.New("server says the name is not in the zone (NOTZONE)")
	// ErrUpdateFailed means the DNS server answered the update with another error code; the message names it.
	ErrUpdateFailed = errors.New("update failed")
	// ErrUnsigned means the reply to a signed update carried no valid TSIG signature, so it cannot be trusted.
	ErrUnsigned = errors.New("reply is not signed with the key")
)
