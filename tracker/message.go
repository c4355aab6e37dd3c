package tracker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ID is a 20-byte identifier: an infohash, a peer ID or an offer ID. On the wire it is a JSON string of 20
// characters, one per byte (U+0000..U+00FF), as bittorrent-tracker encodes binary strings.
type ID [20]byte

// String returns the ID as lowercase hex, for logs.
func (id ID) String() string { return fmt.Sprintf("%x", id[:]) }

// MarshalJSON encodes the ID as a 20-character binary string.
func (id ID) MarshalJSON() ([]byte, error) { return AppendID(make([]byte, 0, 2*len(id)+2), id), nil }

// binaryString maps each byte to the code point of the same value, the "binary string" of JavaScript clients.
func binaryString(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) * 2)
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

// parseID decodes a JSON value holding a 20-character binary string.
func parseID(raw json.RawMessage, bad error) (ID, error) {
	var id ID
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return id, bad
	}
	n := 0
	for _, r := range s {
		if r > 0xFF || n == len(id) {
			return id, bad
		}
		id[n] = byte(r)
		n++
	}
	if n != len(id) {
		return id, bad
	}
	return id, nil
}

// Actions and events of the protocol.
const (
	ActionAnnounce = "announce"
	ActionScrape   = "scrape"

	EventStarted   = "started"
	EventUpdate    = "update"
	EventCompleted = "completed"
	EventStopped   = "stopped"
	EventPaused    = "paused"
)

// Offer is one WebRTC offer in an announce, to be relayed to one peer.
type Offer struct {
	ID  ID
	SDP json.RawMessage // {"type":"offer","sdp":"..."}, relayed verbatim
}

// Request is a parsed message from a peer.
type Request struct {
	Action string
	// InfoHashes holds the one infohash of an announce, or those of a scrape (none means all swarms).
	InfoHashes []ID
	PeerID     ID
	Event      string // one of the Event constants; an announce without event is an update
	NumWant    int
	Uploaded   int64
	Downloaded int64
	Left       int64 // -1 when unknown (missing, null or negative, as clients without metadata send)
	Offers     []Offer

	// An answer to a relayed offer: sent by the peer that received the offer, routed to ToPeerID.
	Answer   json.RawMessage
	ToPeerID ID
	OfferID  ID
}

// IsAnswer reports whether the request carries an answer to an offer rather than an announce.
func (r *Request) IsAnswer() bool { return r.Answer != nil }

// wireRequest is the JSON shape of a request; fields are raw so that each can be checked for its type.
type wireRequest struct {
	Action     json.RawMessage `json:"action"`
	InfoHash   json.RawMessage `json:"info_hash"`
	PeerID     json.RawMessage `json:"peer_id"`
	Event      json.RawMessage `json:"event"`
	NumWant    json.RawMessage `json:"numwant"`
	Uploaded   json.RawMessage `json:"uploaded"`
	Downloaded json.RawMessage `json:"downloaded"`
	Left       json.RawMessage `json:"left"`
	Offers     json.RawMessage `json:"offers"`
	Answer     json.RawMessage `json:"answer"`
	ToPeerID   json.RawMessage `json:"to_peer_id"`
	OfferID    json.RawMessage `json:"offer_id"`
}

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || bytes.Equal(raw, []byte("null")) }

// ParseRequest parses one text frame from a peer. The returned action is set (to the request's action when it
// is a known one) even when err is not nil, so that the failure reply can carry it, and so is the infohash when
// it parsed, so that clients can match the failure to their torrent.
func ParseRequest(data []byte) (*Request, error) { return parseRequest(data, false) }

// parseRequest is ParseRequest; with alias, raw session descriptions in the result may point into data.
func parseRequest(data []byte, alias bool) (*Request, error) {
	if r, ok := parseFast(data, alias); ok {
		return r, nil
	}
	return parseRequestSlow(data)
}

// parseRequestSlow is the reference parser: it decodes each field for its type with encoding/json, and gives
// every failure reason.
func parseRequestSlow(data []byte) (*Request, error) {
	r := &Request{Action: ActionAnnounce, Left: -1}
	var w wireRequest
	if err := json.Unmarshal(data, &w); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return r, ErrNotObject
		}
		return r, ErrInvalidJSON
	}
	var action string
	if json.Unmarshal(w.Action, &action) != nil || (action != ActionAnnounce && action != ActionScrape) {
		return r, ErrUnknownAction
	}
	r.Action = action
	if action == ActionScrape {
		return r, r.parseScrape(w.InfoHash)
	}
	return r, r.parseAnnounce(&w)
}

func (r *Request) parseScrape(raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	if raw[0] == '[' {
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return ErrBadInfoHash
		}
		if len(list) > MaxScrapeHashes {
			return ErrTooManyHashes
		}
		for _, item := range list {
			id, err := parseID(item, ErrBadInfoHash)
			if err != nil {
				return err
			}
			r.InfoHashes = append(r.InfoHashes, id)
		}
		return nil
	}
	id, err := parseID(raw, ErrBadInfoHash)
	if err != nil {
		return err
	}
	r.InfoHashes = []ID{id}
	return nil
}

func (r *Request) parseAnnounce(w *wireRequest) error {
	ih, err := parseID(w.InfoHash, ErrBadInfoHash)
	if err != nil {
		return err
	}
	r.InfoHashes = []ID{ih}
	if r.PeerID, err = parseID(w.PeerID, ErrBadPeerID); err != nil {
		return err
	}
	if !isNull(w.Answer) {
		return r.parseAnswer(w)
	}
	if !isNull(w.Event) {
		if json.Unmarshal(w.Event, &r.Event) != nil {
			return fmt.Errorf("event: %w", ErrBadField)
		}
	}
	switch r.Event {
	case "", "empty":
		r.Event = EventUpdate
	case EventStarted, EventUpdate, EventCompleted, EventStopped, EventPaused:
	default:
		return ErrBadEvent
	}
	numWant, err := parseNumber(w.NumWant, "numwant", 0)
	if err != nil {
		return err
	}
	r.NumWant = int(min(max(numWant, 0), MaxOffersPerAnnounce))
	if r.Uploaded, err = parseNumber(w.Uploaded, "uploaded", 0); err != nil {
		return err
	}
	if r.Downloaded, err = parseNumber(w.Downloaded, "downloaded", 0); err != nil {
		return err
	}
	if r.Left, err = parseNumber(w.Left, "left", -1); err != nil {
		return err
	}
	if r.Left < 0 {
		r.Left = -1
	}
	return r.parseOffers(w.Offers)
}

func (r *Request) parseOffers(raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	var list []struct {
		OfferID json.RawMessage `json:"offer_id"`
		Offer   json.RawMessage `json:"offer"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("offers: %w", ErrBadField)
	}
	if len(list) > MaxOffersPerAnnounce {
		return ErrTooManyOffers
	}
	for _, o := range list {
		id, err := parseID(o.OfferID, ErrBadOfferID)
		if err != nil {
			return err
		}
		if !isSessionDescription(o.Offer, "offer") {
			return ErrBadOffer
		}
		r.Offers = append(r.Offers, Offer{ID: id, SDP: o.Offer})
	}
	return nil
}

func (r *Request) parseAnswer(w *wireRequest) error {
	if !isSessionDescription(w.Answer, "answer") {
		return ErrBadAnswer
	}
	var err error
	if r.ToPeerID, err = parseID(w.ToPeerID, ErrBadToPeerID); err != nil {
		return err
	}
	if r.OfferID, err = parseID(w.OfferID, ErrBadOfferID); err != nil {
		return err
	}
	r.Answer = w.Answer
	return nil
}

// isSessionDescription reports whether raw is a WebRTC session description of the given type.
func isSessionDescription(raw json.RawMessage, typ string) bool {
	var sd struct {
		Type *string `json:"type"`
		SDP  *string `json:"sdp"`
	}
	if json.Unmarshal(raw, &sd) != nil || sd.Type == nil || sd.SDP == nil {
		return false
	}
	return *sd.Type == typ
}

// parseNumber reads an optional JSON number; missing or null gives def. Clients send integers, but
// JavaScript numbers may carry a fraction, which is dropped.
func parseNumber(raw json.RawMessage, name string, def int64) (int64, error) {
	if isNull(raw) {
		return def, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, fmt.Errorf("%s: %w", name, ErrBadField)
	}
	const maxExact = 1 << 53 // largest integer a JavaScript number holds exactly
	if f > maxExact || f < -maxExact {
		return 0, fmt.Errorf("%s: %w", name, ErrBadField)
	}
	return int64(f), nil
}

// Replies. Every message the tracker sends carries action: browser clients treat a message without one as a
// broken socket and reconnect.

// AnnounceReply answers an announce.
type AnnounceReply struct {
	Action     string `json:"action"`
	Interval   int    `json:"interval"`
	InfoHash   ID     `json:"info_hash"`
	Complete   int    `json:"complete"`
	Incomplete int    `json:"incomplete"`
}

// OfferMessage relays an offer to a peer; AnswerMessage relays the answer back to the offering peer.
type OfferMessage struct {
	Action   string          `json:"action"`
	Offer    json.RawMessage `json:"offer"`
	OfferID  ID              `json:"offer_id"`
	PeerID   ID              `json:"peer_id"`
	InfoHash ID              `json:"info_hash"`
}

// AnswerMessage relays an answer to the peer that made the offer.
type AnswerMessage struct {
	Action   string          `json:"action"`
	Answer   json.RawMessage `json:"answer"`
	OfferID  ID              `json:"offer_id"`
	PeerID   ID              `json:"peer_id"`
	InfoHash ID              `json:"info_hash"`
}

// ScrapeFile is the state of one swarm in a scrape reply.
type ScrapeFile struct {
	Complete   int   `json:"complete"`
	Incomplete int   `json:"incomplete"`
	Downloaded int64 `json:"downloaded"`
}

// ScrapeReply answers a scrape. Files is keyed by the binary-string infohash.
type ScrapeReply struct {
	Action string                `json:"action"`
	Files  map[string]ScrapeFile `json:"files"`
}

// FailureReply refuses a request, saying why.
type FailureReply struct {
	Action        string `json:"action"`
	FailureReason string `json:"failure reason"`
	InfoHash      *ID    `json:"info_hash,omitempty"`
}
