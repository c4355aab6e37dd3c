package tracker

import "strconv"

// Hand-written encoders for the replies the tracker sends most: encoding/json's reflection was a tenth of the
// tracker's CPU time under load. Each writes the same JSON object as json.Marshal of the reply type, field for
// field; the relayed session description is copied as the client sent it (it parsed as JSON).

// offerMessageOverhead is the length of an offer or answer message without its session description.
const offerMessageOverhead = 200

// AppendID appends id as a JSON string of one character per byte, the "binary string" of JavaScript clients:
// bytes 0x80–0xFF become two-byte UTF-8 characters; control characters, the quote and the backslash become
// \u00XX escapes.
func AppendID(dst []byte, id ID) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, c := range id {
		switch {
		case c < 0x20 || c == '"' || c == '\\':
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		case c < 0x80:
			dst = append(dst, c)
		default:
			dst = append(dst, 0xC0|c>>6, 0x80|c&0x3F)
		}
	}
	return append(dst, '"')
}

// appendAnnounceReply encodes an AnnounceReply.
func appendAnnounceReply(dst []byte, interval int, ih ID, complete, incomplete int) []byte {
	dst = append(dst, `{"action":"announce","interval":`...)
	dst = strconv.AppendInt(dst, int64(interval), 10)
	dst = append(dst, `,"info_hash":`...)
	dst = AppendID(dst, ih)
	dst = append(dst, `,"complete":`...)
	dst = strconv.AppendInt(dst, int64(complete), 10)
	dst = append(dst, `,"incomplete":`...)
	dst = strconv.AppendInt(dst, int64(incomplete), 10)
	return append(dst, '}')
}

// appendOfferMessage encodes an OfferMessage.
func appendOfferMessage(dst, offer []byte, offerID, peerID, ih ID) []byte {
	dst = append(dst, `{"action":"announce","offer":`...)
	return appendRelayTail(append(dst, offer...), offerID, peerID, ih)
}

// appendAnswerMessage encodes an AnswerMessage.
func appendAnswerMessage(dst, answer []byte, offerID, peerID, ih ID) []byte {
	dst = append(dst, `{"action":"announce","answer":`...)
	return appendRelayTail(append(dst, answer...), offerID, peerID, ih)
}

func appendRelayTail(dst []byte, offerID, peerID, ih ID) []byte {
	dst = append(dst, `,"offer_id":`...)
	dst = AppendID(dst, offerID)
	dst = append(dst, `,"peer_id":`...)
	dst = AppendID(dst, peerID)
	dst = append(dst, `,"info_hash":`...)
	dst = AppendID(dst, ih)
	return append(dst, '}')
}
