package federation

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"net/url"
	"time"
	"unicode/utf8"
)

// Kind names what an envelope's body is.
type Kind string

// The kinds of message the federation exchanges. A gateway in a crowd sends HelpRequest; the member answers
// Accept or Decline. An accepting helper, once it holds and has verified the content, sends Ready; a helper
// that can no longer help (its own site has a crowd) sends Decline. The gateway ends help with Release.
// For a site served over HTTPS, the helper first gets a certificate for the site's name by ACME DNS-01,
// asking the gateway with Challenge to publish (and later remove) the challenge's TXT record.
// Ready, Release, Challenge and an unsolicited Decline are answered with Ack.
const (
	KindHelpRequest Kind = "help-request"
	KindAccept      Kind = "accept"
	KindReady       Kind = "ready"
	KindDecline     Kind = "decline"
	KindRelease     Kind = "release"
	KindChallenge   Kind = "acme-challenge"
	KindAck         Kind = "ack"
)

// Message is the body of an envelope. Each kind's body type validates itself; Seal refuses, and Open
// rejects, a body that does not validate.
type Message interface {
	Kind() Kind
	Validate() error
}

// newMessage returns an empty body for kind, or false if the kind is unknown.
func newMessage(kind Kind) (Message, bool) {
	switch kind {
	case KindHelpRequest:
		return new(HelpRequest), true
	case KindAccept:
		return new(Accept), true
	case KindReady:
		return new(Ready), true
	case KindDecline:
		return new(Decline), true
	case KindRelease:
		return new(Release), true
	case KindChallenge:
		return new(Challenge), true
	case KindAck:
		return new(Ack), true
	}
	return nil, false
}

// HelpRequest asks a member to help serve a site version during a crowd.
type HelpRequest struct {
	// Site is the site's host name, as clients send it in Host and as DNS publishes it.
	Site string `json:"site"`
	// Version names the site version the torrent holds.
	Version string `json:"version"`
	// InfoHash is the torrent's v1 infohash in lower-case hex; the helper serves only content that verifies
	// against it.
	InfoHash string `json:"infohash"`
	// Origin is the URL of the site's origin, for paths the torrent does not hold.
	Origin string `json:"origin"`
	// Webseeds are BEP 19 webseed URLs the helper may fetch the torrent's data from.
	Webseeds []string `json:"webseeds,omitempty"`
	// Tracker is the announce URL of the site's swarm.
	Tracker string `json:"tracker"`
	// Capacity is the load the gateway asks the helper to take, in requests per second.
	Capacity int `json:"capacity"`
	// Until is when the help ends unless renewed by another request; a helper never needs a Release to stop.
	Until time.Time `json:"until"`
	// Challenge is random bytes, in hex, that the helper mixes into Ready.Proof (see ProofOf).
	Challenge string `json:"challenge,omitempty"`
	// TLS says the site is served over HTTPS: the helper must also serve it so, with a certificate of its
	// own for Site (see Challenge), before it reports Ready. Omitted when false, so requests for plain-HTTP
	// sites read as before to members that predate it.
	TLS bool `json:"tls,omitempty"`
}

func (*HelpRequest) Kind() Kind { return KindHelpRequest }

func (m *HelpRequest) Validate() error {
	if err := validText("site", m.Site, true); err != nil {
		return err
	}
	if err := validText("version", m.Version, true); err != nil {
		return err
	}
	if err := validInfoHash(m.InfoHash); err != nil {
		return err
	}
	if err := validURL("origin", m.Origin, "http", "https"); err != nil {
		return err
	}
	if len(m.Webseeds) > MaxWebseeds {
		return fmt.Errorf("%d webseeds, at most %d: %w", len(m.Webseeds), MaxWebseeds, ErrBadBody)
	}
	for _, w := range m.Webseeds {
		if err := validURL("webseed", w, "http", "https"); err != nil {
			return err
		}
	}
	if err := validURL("tracker", m.Tracker, "ws", "wss", "http", "https", "udp"); err != nil {
		return err
	}
	if m.Capacity <= 0 {
		return fmt.Errorf("capacity %d: must be positive: %w", m.Capacity, ErrBadBody)
	}
	if m.Until.IsZero() {
		return fmt.Errorf("until: missing: %w", ErrBadBody)
	}
	if m.Challenge != "" {
		if b, err := hex.DecodeString(m.Challenge); err != nil || len(b) < 16 || len(b) > 64 {
			return fmt.Errorf("challenge: want 16 to 64 bytes in hex: %w", ErrBadBody)
		}
	}
	return nil
}

// Accept is a helper's answer to a HelpRequest it takes on: it will fetch the content and send Ready.
type Accept struct {
	InfoHash string `json:"infohash"`
	// Capacity is the load the helper offers, in requests per second; DNS weights helpers by it.
	Capacity int `json:"capacity"`
	// PeerAddress, if set, is the helper's BitTorrent listener ("IP:port"): helpers recruited after it fetch
	// from it too, so that the site's link carries each piece to the helpers about once.
	PeerAddress string `json:"peerAddress,omitempty"`
}

func (*Accept) Kind() Kind { return KindAccept }

func (m *Accept) Validate() error {
	if err := validInfoHash(m.InfoHash); err != nil {
		return err
	}
	if m.Capacity <= 0 {
		return fmt.Errorf("capacity %d: must be positive: %w", m.Capacity, ErrBadBody)
	}
	if m.PeerAddress != "" {
		if ap, err := netip.ParseAddrPort(m.PeerAddress); err != nil || ap.Port() == 0 || !ap.Addr().IsValid() {
			return fmt.Errorf("peer address %q: want IP:port: %w", m.PeerAddress, ErrBadBody)
		}
	}
	return nil
}

// Ready reports that a helper holds the whole torrent, verified against the infohash, and serves it. The
// helper is the envelope's sender.
type Ready struct {
	Site     string `json:"site"`
	InfoHash string `json:"infohash"`
	// Address is where the helper serves the site over HTTP, "ip:port".
	Address netip.AddrPort `json:"address"`
	// TLSAddress is where the helper serves the site over HTTPS, with a certificate for Site; set when the
	// request asked for TLS.
	TLSAddress netip.AddrPort `json:"tls_address,omitzero"`
	// Proof shows the helper holds the data: ProofOf the request's challenge and the piece it selects, in hex.
	Proof string `json:"proof"`
	// Fetched says the helper holds the whole version. A helper serves while it fetches, so it reports Ready
	// first without it, and again with it once the fetch is done.
	Fetched bool `json:"fetched,omitempty"`
}

func (*Ready) Kind() Kind { return KindReady }

func (m *Ready) Validate() error {
	if err := validText("site", m.Site, true); err != nil {
		return err
	}
	if err := validInfoHash(m.InfoHash); err != nil {
		return err
	}
	if !m.Address.IsValid() || m.Address.Port() == 0 || m.Address.Addr().IsUnspecified() {
		return fmt.Errorf("address %q: want a specific ip:port: %w", m.Address, ErrBadBody)
	}
	if m.TLSAddress.IsValid() && (m.TLSAddress.Port() == 0 || m.TLSAddress.Addr().IsUnspecified()) {
		return fmt.Errorf("tls_address %q: want a specific ip:port: %w", m.TLSAddress, ErrBadBody)
	}
	if b, err := hex.DecodeString(m.Proof); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("proof: want %d bytes in hex: %w", sha256.Size, ErrBadBody)
	}
	return nil
}

// Reasons a member declines, the usual values of Decline.Reason.
const (
	ReasonNoCapacity = "no spare capacity"
	ReasonInCrowd    = "in a crowd myself"
	ReasonNoTLS      = "cannot serve HTTPS: no ACME directory or no HTTPS listener"
)

// Decline refuses a HelpRequest, or, sent on its own, tells the gateway that a helper stops helping.
type Decline struct {
	Site     string `json:"site,omitempty"`
	InfoHash string `json:"infohash,omitempty"`
	Reason   string `json:"reason"`
}

func (*Decline) Kind() Kind { return KindDecline }

func (m *Decline) Validate() error {
	if err := validText("site", m.Site, false); err != nil {
		return err
	}
	if m.InfoHash != "" {
		if err := validInfoHash(m.InfoHash); err != nil {
			return err
		}
	}
	return validText("reason", m.Reason, true)
}

// Release ends a helper's help with one site version: the crowd is over and its DNS records have expired.
type Release struct {
	Site     string `json:"site"`
	InfoHash string `json:"infohash"`
}

func (*Release) Kind() Kind { return KindRelease }

func (m *Release) Validate() error {
	if err := validText("site", m.Site, true); err != nil {
		return err
	}
	return validInfoHash(m.InfoHash)
}

// Challenge asks the gateway that recruited the sender to publish (or, with Remove, to remove) the TXT record
// of an ACME DNS-01 challenge for the site's name: Value at _acme-challenge.<Site>. The helper gets its own
// certificate for the site this way; the site's private key never leaves it. The gateway answers Ack once the
// record is live, and removes it on request, when it releases the helper, and after a timeout.
type Challenge struct {
	Site string `json:"site"`
	// Value is the TXT record's content: the base64url SHA-256 of the key authorization (RFC 8555 8.4).
	Value  string `json:"value"`
	Remove bool   `json:"remove,omitempty"`
}

func (*Challenge) Kind() Kind { return KindChallenge }

func (m *Challenge) Validate() error {
	if err := validText("site", m.Site, true); err != nil {
		return err
	}
	if len(m.Value) != ChallengeValueLen {
		return fmt.Errorf("value: want %d characters of base64url: %w", ChallengeValueLen, ErrBadBody)
	}
	for i := 0; i < len(m.Value); i++ {
		if c := m.Value[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("value: want %d characters of base64url: %w", ChallengeValueLen, ErrBadBody)
		}
	}
	return nil
}

// Ack acknowledges a message that needs no other answer.
type Ack struct{}

func (*Ack) Kind() Kind      { return KindAck }
func (*Ack) Validate() error { return nil }

// DeclinedError is the error Client.Send returns when the member answers with a Decline. It matches
// ErrDeclined with errors.Is.
type DeclinedError struct {
	Member  string
	Decline Decline
}

func (e *DeclinedError) Error() string {
	return fmt.Sprintf("federation: %s declined: %s", e.Member, e.Decline.Reason)
}

func (e *DeclinedError) Unwrap() error { return ErrDeclined }

// ProofOf returns Ready.Proof for a helper holding the torrent: the hex SHA-256 of the request's challenge
// followed by the data of the piece ChallengePiece selects. The gateway computes the same from its own copy.
func ProofOf(challenge, piece []byte) string {
	h := sha256.New()
	h.Write([]byte("swarmgate ready proof v1\x00"))
	h.Write(challenge)
	h.Write(piece)
	return hex.EncodeToString(h.Sum(nil))
}

// ChallengePiece returns the index of the piece, of numPieces, whose data a challenge asks for.
func ChallengePiece(challenge []byte, numPieces int) int {
	if numPieces <= 0 {
		return 0
	}
	sum := sha256.Sum256(challenge)
	return int(binary.BigEndian.Uint64(sum[:8]) % uint64(numPieces))
}

func validInfoHash(s string) error {
	if len(s) != 40 {
		return fmt.Errorf("infohash %q: want 40 lower-case hex digits: %w", s, ErrBadBody)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("infohash %q: want 40 lower-case hex digits: %w", s, ErrBadBody)
		}
	}
	return nil
}

// validText checks a short free-text field: valid UTF-8 without control characters, at most MaxTextLen bytes.
func validText(field, s string, required bool) error {
	if s == "" {
		if required {
			return fmt.Errorf("%s: missing: %w", field, ErrBadBody)
		}
		return nil
	}
	if len(s) > MaxTextLen || !utf8.ValidString(s) {
		return fmt.Errorf("%s: want at most %d bytes of UTF-8: %w", field, MaxTextLen, ErrBadBody)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s %q: control character: %w", field, s, ErrBadBody)
		}
	}
	return nil
}

func validURL(field, s string, schemes ...string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s %q: want an absolute URL: %w", field, s, ErrBadBody)
	}
	for _, sc := range schemes {
		if u.Scheme == sc {
			return nil
		}
	}
	return fmt.Errorf("%s %q: scheme must be one of %v: %w", field, s, schemes, ErrBadBody)
}
