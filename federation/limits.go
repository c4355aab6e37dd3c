package federation

import "time"

// Path is where a member serves the federation endpoint, relative to its URL in the federation file.
const Path = "/.swarm/federation"

// Limits on envelopes. Each is sized from the messages the federation actually sends, with room to spare.
const (
	// MaxEnvelopeSize bounds one sealed envelope, on the wire, in both directions. The largest message, a
	// HelpRequest with MaxWebseeds URLs, is a few KiB; 64 KiB leaves an order of magnitude of room while a
	// flood of maximal messages costs little memory to read and refuse.
	MaxEnvelopeSize = 64 << 10

	// MaxSkew is how far an envelope's timestamp may lie from the receiver's clock, either way. Members' clocks
	// are NTP-synchronised to well under a second; 60 s tolerates a badly drifting clock and slow networks, and
	// bounds how long a nonce must be remembered (2 × MaxSkew) to refuse replays.
	MaxSkew = 60 * time.Second

	// MaxNoncesPerSender bounds the replay cache for one sender: the nonces of its messages still inside the
	// window. A member sends a few messages per crowd per site; 8192 within two minutes (about 68 per second)
	// is far above that, and costs under a megabyte. A sender past the bound is refused (ErrReplayCacheFull)
	// rather than having old nonces forgotten, which would let replays through.
	MaxNoncesPerSender = 8192

	// MaxWebseeds bounds the webseed URLs of a HelpRequest: the gateway and the helpers already recruited for
	// the site, which the paper's federations count in tens.
	MaxWebseeds = 64

	// MaxTextLen bounds free-text fields (a Decline's reason, site and version names): enough for a sentence or
	// a DNS name (253 bytes), not for smuggling data.
	MaxTextLen = 256

	// ChallengeValueLen is the length of Challenge.Value: an ACME DNS-01 TXT value is a SHA-256 digest in
	// unpadded base64url (RFC 8555 8.4), always 43 characters; nothing else may be published.
	ChallengeValueLen = 43

	// maxSitesPerMember bounds the sites one member may list: a gateway fronts one site, or a few names of
	// one (www. and the bare domain); 64 leaves room for a host of several small sites.
	maxSitesPerMember = 64

	// maxFederationFileSize bounds the federation file: about 300 bytes per member leaves room for thousands.
	maxFederationFileSize = 1 << 20
)

// Version is the envelope format version, the "v" field of every envelope, and part of what is signed.
const Version = 1
