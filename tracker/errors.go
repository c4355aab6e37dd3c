package tracker

import "errors"

// Errors returned to peers as a "failure reason" and by Client. Each names what was wrong with a request.
var (
	ErrInvalidJSON       = errors.New("invalid JSON")
	ErrNotObject         = errors.New("message is not a JSON object")
	ErrUnknownAction     = errors.New("unknown action")
	ErrBadInfoHash       = errors.New("info_hash must be a 20-byte binary string")
	ErrBadPeerID         = errors.New("peer_id must be a 20-byte binary string")
	ErrBadOfferID        = errors.New("offer_id must be a 20-byte binary string")
	ErrBadToPeerID       = errors.New("to_peer_id must be a 20-byte binary string")
	ErrBadEvent          = errors.New("invalid event")
	ErrBadField          = errors.New("field has the wrong type")
	ErrTooManyOffers     = errors.New("too many offers")
	ErrBadOffer          = errors.New("offer must be an object with type \"offer\" and an sdp string")
	ErrBadAnswer         = errors.New("answer must be an object with type \"answer\" and an sdp string")
	ErrTooManyHashes     = errors.New("too many info_hash values in scrape")
	ErrTooManyTorrents   = errors.New("too many torrents on this connection")
	ErrTooManySwarms     = errors.New("too many swarms started from your address")
	ErrPeerIDInUse       = errors.New("peer_id is in use by another connection")
	ErrNoSuchOffer       = errors.New("answer does not match an offer relayed to this connection")
	ErrNotInSwarm        = errors.New("connection has not announced this torrent")
	ErrRateLimited       = errors.New("rate limit exceeded: slow down")
	ErrBinaryFrame       = errors.New("binary frames are not part of the protocol")
	ErrClosed            = errors.New("tracker: connection closed")
	ErrTrackerFailure    = errors.New("tracker refused the request")
	ErrUnexpectedMessage = errors.New("tracker: unexpected message")

	errNotPollable = errors.New("tracker: connection has no file descriptor to poll")
)
