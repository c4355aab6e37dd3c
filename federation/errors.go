package federation

import "errors"

// Errors from Open and Seal. Each names one reason a message is refused, so that callers can log why and the
// HTTP layer can answer with the right status (see statusOf).
var (
	ErrTooLarge           = errors.New("message too large")
	ErrMalformed          = errors.New("malformed envelope")
	ErrUnsupportedVersion = errors.New("unsupported envelope version")
	ErrUnknownSender      = errors.New("sender is not a member of the federation")
	ErrWrongRecipient     = errors.New("message is addressed to another member")
	ErrUnsigned           = errors.New("message is not signed")
	ErrBadSignature       = errors.New("signature does not verify with the sender's key")
	ErrStale              = errors.New("timestamp outside the accepted window")
	ErrUnknownKind        = errors.New("unknown message kind")
	ErrBadBody            = errors.New("invalid message body")
	ErrReplay             = errors.New("nonce already seen: replayed message")
	ErrReplayCacheFull    = errors.New("too many messages from this sender within the window")
)

// Errors from Handler and Client.
var (
	ErrMethod         = errors.New("method not allowed: POST an envelope")
	ErrNotARequest    = errors.New("a reply cannot be sent as a request")
	ErrNotInReplyTo   = errors.New("reply does not answer this request")
	ErrUnexpectedKind = errors.New("unexpected reply kind")
	ErrUnknownMember  = errors.New("no member of the federation has this URL")
	ErrRefused        = errors.New("member refused the message")
	ErrDeclined       = errors.New("member declined")
	// ErrForbidden is for a HandlerFunc to wrap when an authentic, valid message asks for what its sender may
	// not have (a challenge for a site it was not recruited for): the sender gets 403.
	ErrForbidden = errors.New("not allowed for this member")
)

// Errors from the key file and the federation file.
var (
	ErrKeyFile          = errors.New("bad key file")
	ErrKeyPermissions   = errors.New("key file is readable by others")
	ErrBadPublicKey     = errors.New("bad public key")
	ErrNotAMember       = errors.New("this server's key is not listed in the federation")
	ErrFederationFile   = errors.New("bad federation file")
	ErrNoMembers        = errors.New("federation lists no members")
	ErrBadName          = errors.New("bad member name")
	ErrDuplicateName    = errors.New("duplicate member name")
	ErrBadURL           = errors.New("bad member URL")
	ErrDuplicateURL     = errors.New("duplicate member URL")
	ErrDuplicateKey     = errors.New("duplicate member key")
	ErrBadAddress       = errors.New("bad address")
	ErrDuplicateAddress = errors.New("duplicate address")
	ErrBadSite          = errors.New("bad site name")
	ErrDuplicateSite    = errors.New("site listed twice")
)
