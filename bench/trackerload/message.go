package trackerload

import (
	"bytes"
	"math/rand/v2"
	"strconv"

	"github.com/swarmgate/swarmgate/tracker"
)

// The messages the load generator sends and recognises. They are built by appending to a per-socket buffer
// rather than with encoding/json, so that generating load costs little CPU.

// offerSDP is a small but realistic data-channel offer (one m-line, two host candidates), JSON-escaped.
const offerSDP = `{"type":"offer","sdp":"v=0\r\no=- 4215716367958455736 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n` +
	`a=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n` +
	`m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n` +
	`a=candidate:1467250027 1 udp 2122260223 192.168.1.20 46243 typ host generation 0\r\n` +
	`a=candidate:1467250028 1 udp 2122262783 10.0.0.7 50872 typ host generation 0\r\n` +
	`a=ice-ufrag:Oy3l\r\na=ice-pwd:LBm2t2oX2jV9VPr3Ce3f6Ea5\r\na=ice-options:trickle\r\n` +
	`a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE:DD:8C:66:A5:8E:50:55:EA:4C:D3:B0:6F:6E:D8:D1:0E\r\n` +
	`a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n"}`

func randomID() (id [20]byte) {
	for i := 0; i < len(id); i += 8 {
		v := rand.Uint64()
		for j := i; j < min(i+8, len(id)); j++ {
			id[j] = byte(v)
			v >>= 8
		}
	}
	return id
}

// announcer builds one socket's announces: its infohash and peer ID are fixed, its counters move.
type announcer struct {
	prefix     []byte // {"action":"announce","info_hash":…,"peer_id":…,"numwant":5
	left       int64
	seeder     bool
	uploaded   int64
	downloaded int64
}

func newAnnouncer(infoHash, peerID [20]byte, seeder bool) announcer {
	p := []byte(`{"action":"announce","info_hash":`)
	p = tracker.AppendID(p, infoHash)
	p = append(p, `,"peer_id":`...)
	p = tracker.AppendID(p, peerID)
	p = append(p, `,"numwant":5`...)
	a := announcer{prefix: p, seeder: seeder}
	if !seeder {
		a.left = 1<<20 + rand.Int64N(100<<20)
	}
	return a
}

// appendAnnounce appends the next announce, with event (may be empty) and, when withOffer, one offer.
func (a *announcer) appendAnnounce(dst []byte, event string, withOffer bool) []byte {
	if !a.seeder {
		step := min(a.left-1, 16<<10)
		a.left -= step
		a.downloaded += step
	}
	a.uploaded += 16 << 10
	dst = append(dst, a.prefix...)
	dst = append(dst, `,"uploaded":`...)
	dst = strconv.AppendInt(dst, a.uploaded, 10)
	dst = append(dst, `,"downloaded":`...)
	dst = strconv.AppendInt(dst, a.downloaded, 10)
	dst = append(dst, `,"left":`...)
	dst = strconv.AppendInt(dst, a.left, 10)
	if event != "" {
		dst = append(dst, `,"event":"`...)
		dst = append(dst, event...)
		dst = append(dst, '"')
	}
	if withOffer {
		id := randomID()
		dst = append(dst, `,"offers":[{"offer_id":`...)
		dst = tracker.AppendID(dst, tracker.ID(id))
		dst = append(dst, `,"offer":`...)
		dst = append(dst, offerSDP...)
		dst = append(dst, `}]`...)
	}
	return append(dst, '}')
}

// kind is what a tracker message is, as far as the load generator cares.
type kind int

const (
	kindAnnounceReply kind = iota
	kindFailure
	kindOffer
	kindAnswer
	kindOther
)

// Keys as they appear in a JSON object. Inside a JSON string every quote is escaped, so an unescaped
// `"offer":` can only be a key; the values we send and receive never contain a key-like sequence otherwise.
var (
	keyFailure  = []byte(`"failure reason":`)
	keyOffer    = []byte(`"offer":`)
	keyAnswer   = []byte(`"answer":`)
	keyInterval = []byte(`"interval":`)
)

// classify tells what a tracker message is without decoding it.
func classify(msg []byte) kind {
	switch {
	case bytes.Contains(msg, keyFailure):
		return kindFailure
	case bytes.Contains(msg, keyOffer):
		return kindOffer
	case bytes.Contains(msg, keyAnswer):
		return kindAnswer
	case bytes.Contains(msg, keyInterval):
		return kindAnnounceReply
	}
	return kindOther
}
