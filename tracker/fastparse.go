package tracker

// A single-pass parser for the requests clients send most: announces (with or without offers) and answers
// whose keys are spelled exactly as clients spell them, each once. It never refuses: anything it is not sure
// of (another key, a duplicate, a fraction, a malformed or unusual value, any error) it leaves to the reference
// parser, ParseRequest's parseRequestSlow, which gives the exact result and failure reason. FuzzParseRequest
// checks that whatever the fast parser accepts, the reference parser accepts identically.

// Bits of the keys seen, to spot duplicates (encoding/json lets the last win; the fast parser defers).
const (
	fkAction = 1 << iota
	fkInfoHash
	fkPeerID
	fkEvent
	fkNumWant
	fkUploaded
	fkDownloaded
	fkLeft
	fkOffers
	fkAnswer
	fkToPeerID
	fkOfferID
)

// maxFastDigits bounds the integers the fast parser reads: 15 digits stay below 2^53, so the value is what the
// reference parser's float64 gives.
const maxFastDigits = 15

type fastScanner struct {
	b []byte
	i int
}

func (s *fastScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// eat consumes c, after white space.
func (s *fastScanner) eat(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// null consumes a null literal, after white space.
func (s *fastScanner) null() bool {
	s.space()
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// plain reads a string of printable ASCII without escapes.
func (s *fastScanner) plain() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c < 0x20 || c == '\\' || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// id reads a binary string of exactly 20 characters U+0000..U+00FF.
func (s *fastScanner) id() (id ID, ok bool) {
	if !s.eat('"') {
		return id, false
	}
	n := 0
	b := s.b
	for s.i < len(b) {
		c := b[s.i]
		switch {
		case c == '"':
			s.i++
			return id, n == len(id)
		case c < 0x20:
			return id, false
		case c == '\\':
			if s.i+1 >= len(b) {
				return id, false
			}
			switch b[s.i+1] {
			case '"', '\\', '/':
				c = b[s.i+1]
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'u':
				if s.i+5 >= len(b) || b[s.i+2] != '0' || b[s.i+3] != '0' {
					return id, false
				}
				hi, ok1 := unhex(b[s.i+4])
				lo, ok2 := unhex(b[s.i+5])
				if !ok1 || !ok2 {
					return id, false
				}
				c = hi<<4 | lo
				s.i += 4
			default:
				return id, false
			}
			s.i += 2
		case c < 0x80:
			s.i++
		case (c == 0xC2 || c == 0xC3) && s.i+1 < len(b) && b[s.i+1]&0xC0 == 0x80:
			c = (c&0x1F)<<6 | b[s.i+1]&0x3F
			s.i += 2
		default:
			return id, false
		}
		if n == len(id) {
			return id, false
		}
		id[n] = c
		n++
	}
	return id, false
}

// str skips a JSON string, checking its grammar as encoding/json does.
func (s *fastScanner) str() bool {
	if !s.eat('"') {
		return false
	}
	b := s.b
	for s.i < len(b) {
		c := b[s.i]
		switch {
		case c == '"':
			s.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if s.i+1 >= len(b) {
				return false
			}
			switch b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+5 >= len(b) {
					return false
				}
				for _, h := range b[s.i+2 : s.i+6] {
					if _, ok := unhex(h); !ok {
						return false
					}
				}
				s.i += 6
			default:
				return false
			}
		default:
			s.i++
		}
	}
	return false
}

// number reads an optional integer: null gives def.
func (s *fastScanner) number(def int64) (int64, bool) {
	if s.null() {
		return def, true
	}
	s.space()
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	start := s.i
	var v int64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		v = v*10 + int64(s.b[s.i]-'0')
		s.i++
	}
	n := s.i - start
	if n == 0 || n > maxFastDigits || (n > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) {
		if c := s.b[s.i]; c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	if neg {
		v = -v
	}
	return v, true
}

// sessionDescription reads {"type":typ,"sdp":"…"} (in either order, nothing else) and returns it raw.
func (s *fastScanner) sessionDescription(typ string) ([]byte, bool) {
	s.space()
	start := s.i
	if !s.eat('{') {
		return nil, false
	}
	var hasType, hasSDP bool
	for {
		key, ok := s.plain()
		if !ok || !s.eat(':') {
			return nil, false
		}
		switch string(key) {
		case "type":
			v, ok := s.plain()
			if !ok || hasType || string(v) != typ {
				return nil, false
			}
			hasType = true
		case "sdp":
			if hasSDP || !s.str() {
				return nil, false
			}
			hasSDP = true
		default:
			return nil, false
		}
		if s.eat(',') {
			continue
		}
		if !s.eat('}') || !hasType || !hasSDP {
			return nil, false
		}
		return s.b[start:s.i], true
	}
}

// offers reads null or an array of {"offer_id":…,"offer":…} (in either order, nothing else).
func (s *fastScanner) offers(dst []Offer, alias bool) ([]Offer, bool) {
	if s.null() {
		return dst, true
	}
	if !s.eat('[') {
		return nil, false
	}
	if s.eat(']') {
		return dst, true
	}
	for {
		if len(dst) == MaxOffersPerAnnounce || !s.eat('{') {
			return nil, false
		}
		var o Offer
		var hasID, hasSDP bool
		for {
			key, ok := s.plain()
			if !ok || !s.eat(':') {
				return nil, false
			}
			switch string(key) {
			case "offer_id":
				if hasID {
					return nil, false
				}
				if o.ID, ok = s.id(); !ok {
					return nil, false
				}
				hasID = true
			case "offer":
				if hasSDP {
					return nil, false
				}
				if o.SDP, ok = s.sessionDescription("offer"); !ok {
					return nil, false
				}
				if !alias {
					o.SDP = append([]byte(nil), o.SDP...)
				}
				hasSDP = true
			default:
				return nil, false
			}
			if s.eat(',') {
				continue
			}
			if !s.eat('}') || !hasID || !hasSDP {
				return nil, false
			}
			break
		}
		dst = append(dst, o)
		if s.eat(',') {
			continue
		}
		if !s.eat(']') {
			return nil, false
		}
		return dst, true
	}
}

// parseFast parses the common shapes of announce and answer; ok is false when the reference parser must decide.
// With alias, raw session descriptions in the result point into data.
func parseFast(data []byte, alias bool) (r *Request, ok bool) {
	s := fastScanner{b: data}
	if !s.eat('{') {
		return nil, false
	}
	var (
		seen                          int
		ih, peerID, toPeerID, offerID ID
		event                         []byte
		numWant, uploaded, downloaded int64
		left                          int64 = -1
		offers                        []Offer
		answer                        []byte
	)
	for {
		key, ok := s.plain()
		if !ok || !s.eat(':') {
			return nil, false
		}
		var bit int
		switch string(key) {
		case "action":
			bit = fkAction
			v, ok2 := s.plain()
			ok = ok2 && string(v) == ActionAnnounce
		case "info_hash":
			bit = fkInfoHash
			ih, ok = s.id()
		case "peer_id":
			bit = fkPeerID
			peerID, ok = s.id()
		case "event":
			bit = fkEvent
			if !s.null() {
				event, ok = s.plain()
			}
		case "numwant":
			bit = fkNumWant
			numWant, ok = s.number(0)
		case "uploaded":
			bit = fkUploaded
			uploaded, ok = s.number(0)
		case "downloaded":
			bit = fkDownloaded
			downloaded, ok = s.number(0)
		case "left":
			bit = fkLeft
			left, ok = s.number(-1)
		case "offers":
			bit = fkOffers
			offers, ok = s.offers(nil, alias)
		case "answer":
			bit = fkAnswer
			if !s.null() {
				answer, ok = s.sessionDescription("answer")
			}
		case "to_peer_id":
			bit = fkToPeerID
			toPeerID, ok = s.id()
		case "offer_id":
			bit = fkOfferID
			offerID, ok = s.id()
		default:
			return nil, false
		}
		if !ok || seen&bit != 0 {
			return nil, false
		}
		seen |= bit
		if s.eat(',') {
			continue
		}
		if !s.eat('}') {
			return nil, false
		}
		break
	}
	s.space()
	const required = fkAction | fkInfoHash | fkPeerID
	if s.i != len(data) || seen&required != required {
		return nil, false
	}
	r = &Request{Action: ActionAnnounce, InfoHashes: []ID{ih}, PeerID: peerID, Left: -1}
	if answer != nil {
		if seen&(fkToPeerID|fkOfferID) != fkToPeerID|fkOfferID {
			return nil, false
		}
		r.ToPeerID, r.OfferID = toPeerID, offerID
		if alias {
			r.Answer = answer
		} else {
			r.Answer = append([]byte(nil), answer...)
		}
		return r, true
	}
	switch string(event) {
	case "", "empty":
		r.Event = EventUpdate
	case EventStarted:
		r.Event = EventStarted
	case EventUpdate:
		r.Event = EventUpdate
	case EventCompleted:
		r.Event = EventCompleted
	case EventStopped:
		r.Event = EventStopped
	case EventPaused:
		r.Event = EventPaused
	default:
		return nil, false
	}
	r.NumWant = int(min(max(numWant, 0), MaxOffersPerAnnounce))
	r.Uploaded, r.Downloaded, r.Left = uploaded, downloaded, max(left, -1)
	r.Offers = offers
	return r, true
}
