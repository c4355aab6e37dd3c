package tracker

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// bin returns a 20-character binary string (as JSON) whose bytes all equal c.
func bin(c byte) string {
	b, _ := json.Marshal(binaryString([]byte(strings.Repeat(string([]byte{c}), 20))))
	return string(b)
}

func idOf(c byte) ID {
	var id ID
	for i := range id {
		id[i] = c
	}
	return id
}

const offerSDP = `{"type":"offer","sdp":"v=0\r\n"}`

var parseCases = []struct {
	name string
	in   string
	err  error
	want func(t *testing.T, r *Request)
}{
	{"announce started", `{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) +
		`,"event":"started","numwant":5,"uploaded":1,"downloaded":2,"left":3,"offers":[{"offer_id":` + bin(3) +
		`,"offer":` + offerSDP + `}]}`, nil, func(t *testing.T, r *Request) {
		if r.InfoHashes[0] != idOf(1) || r.PeerID != idOf(2) || r.Event != EventStarted || r.NumWant != 5 ||
			r.Uploaded != 1 || r.Downloaded != 2 || r.Left != 3 || len(r.Offers) != 1 || r.Offers[0].ID != idOf(3) {
			t.Fatalf("got %+v", r)
		}
	}},
	{"anacrolix style: offers null, left -1, no event", `{"action":"announce","info_hash":` + bin(1) +
		`,"peer_id":` + bin(2) + `,"numwant":1,"left":-1,"offers":null}`, nil, func(t *testing.T, r *Request) {
		if r.Event != EventUpdate || r.Left != -1 || r.Offers != nil {
			t.Fatalf("got %+v", r)
		}
	}},
	{"high bytes in ids", `{"action":"announce","info_hash":` + bin(0xff) + `,"peer_id":` + bin(0) + `}`, nil,
		func(t *testing.T, r *Request) {
			if r.InfoHashes[0] != idOf(0xff) || r.PeerID != idOf(0) {
				t.Fatalf("got %x %x", r.InfoHashes[0], r.PeerID)
			}
		}},
	{"event empty means update", `{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) +
		`,"event":"empty"}`, nil, func(t *testing.T, r *Request) {
		if r.Event != EventUpdate {
			t.Fatal(r.Event)
		}
	}},
	{"numwant capped", `{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) + `,"numwant":1000}`,
		nil, func(t *testing.T, r *Request) {
			if r.NumWant != MaxOffersPerAnnounce {
				t.Fatal(r.NumWant)
			}
		}},
	{"answer", `{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) + `,"to_peer_id":` + bin(3) +
		`,"offer_id":` + bin(4) + `,"answer":{"type":"answer","sdp":"x"}}`, nil, func(t *testing.T, r *Request) {
		if !r.IsAnswer() || r.ToPeerID != idOf(3) || r.OfferID != idOf(4) {
			t.Fatalf("got %+v", r)
		}
	}},
	{"scrape one", `{"action":"scrape","info_hash":` + bin(1) + `}`, nil, func(t *testing.T, r *Request) {
		if len(r.InfoHashes) != 1 || r.InfoHashes[0] != idOf(1) {
			t.Fatalf("got %+v", r)
		}
	}},
	{"scrape many", `{"action":"scrape","info_hash":[` + bin(1) + `,` + bin(2) + `]}`, nil, func(t *testing.T, r *Request) {
		if len(r.InfoHashes) != 2 || r.InfoHashes[1] != idOf(2) {
			t.Fatalf("got %+v", r)
		}
	}},
	{"scrape all", `{"action":"scrape"}`, nil, func(t *testing.T, r *Request) {
		if len(r.InfoHashes) != 0 {
			t.Fatalf("got %+v", r)
		}
	}},

	{"invalid json", `{"action":`, ErrInvalidJSON, nil},
	{"not an object", `[1,2]`, ErrNotObject, nil},
	{"unknown action", `{"action":"connect"}`, ErrUnknownAction, nil},
	{"action wrong type", `{"action":1}`, ErrUnknownAction, nil},
	{"missing info_hash", `{"action":"announce","peer_id":` + bin(2) + `}`, ErrBadInfoHash, nil},
	{"short info_hash", `{"action":"announce","info_hash":"abc","peer_id":` + bin(2) + `}`, ErrBadInfoHash, nil},
	{"long info_hash", `{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaaa","peer_id":` + bin(2) + `}`, ErrBadInfoHash, nil},
	{"hex info_hash", `{"action":"announce","info_hash":"0123456789abcdef0123456789abcdef01234567","peer_id":` + bin(2) + `}`, ErrBadInfoHash, nil},
	{"info_hash beyond U+00FF", `{"action":"announce","info_hash":"\u0100aaaaaaaaaaaaaaaaaaa","peer_id":` + bin(2) + `}`, ErrBadInfoHash, nil},
	{"info_hash number", `{"action":"announce","info_hash":5,"peer_id":` + bin(2) + `}`, ErrBadInfoHash, nil},
	{"bad peer_id", `{"action":"announce","info_hash":` + bin(1) + `,"peer_id":"x"}`, ErrBadPeerID, nil},
	{"bad event", `{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) + `,"event":"go"}`, ErrBadEvent, nil},
	{"event wrong type", `{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) + `,"event":3}`, ErrBadField, nil},
	{"numwant string", `{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) + `,"numwant":"5"}`, ErrBadField, nil},
	{"left object", `{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) + `,"left":{}}`, ErrBadField, nil},
	{"uploaded huge", `{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) + `,"uploaded":1e300}`, ErrBadField, nil},
	{"offers not array", `{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) + `,"offers":{}}`, ErrBadField, nil},
	{"too many offers", `{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) + `,"offers":[` +
		strings.Repeat(`{"offer_id":`+bin(3)+`,"offer":`+offerSDP+`},`, MaxOffersPerAnnounce) +
		`{"offer_id":` + bin(3) + `,"offer":` + offerSDP + `}]}`, ErrTooManyOffers, nil},
	{"offer without sdp", `{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) +
		`,"offers":[{"offer_id":` + bin(3) + `,"offer":{"type":"offer"}}]}`, ErrBadOffer, nil},
	{"offer of wrong type", `{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) +
		`,"offers":[{"offer_id":` + bin(3) + `,"offer":{"type":"answer","sdp":""}}]}`, ErrBadOffer, nil},
	{"bad offer_id", `{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) +
		`,"offers":[{"offer_id":"x","offer":` + offerSDP + `}]}`, ErrBadOfferID, nil},
	{"answer without to_peer_id", `{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) +
		`,"offer_id":` + bin(4) + `,"answer":{"type":"answer","sdp":"x"}}`, ErrBadToPeerID, nil},
	{"answer not an answer", `{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) + `,"to_peer_id":` +
		bin(3) + `,"offer_id":` + bin(4) + `,"answer":"sdp"}`, ErrBadAnswer, nil},
	{"scrape bad hash", `{"action":"scrape","info_hash":["x"]}`, ErrBadInfoHash, nil},
	{"scrape too many", `{"action":"scrape","info_hash":[` + strings.TrimSuffix(strings.Repeat(bin(1)+",", MaxScrapeHashes+1), ",") + `]}`, ErrTooManyHashes, nil},
}

func TestParseRequest(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRequest([]byte(tc.in))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if r == nil || r.Action == "" {
				t.Fatal("request must carry an action for the reply, even on error")
			}
			if tc.want != nil {
				tc.want(t, r)
			}
		})
	}
}

func TestIDRoundTrip(t *testing.T) {
	var id ID
	for i := range id {
		id[i] = byte(i * 13)
	}
	b, err := json.Marshal(id)
	if err != nil {
		t.Fatal(err)
	}
	var back ID
	if err := json.Unmarshal(b, &back); err != nil || back != id {
		t.Fatalf("round trip: %x -> %s -> %x (%v)", id, b, back, err)
	}
}

// TestFastParserCoversClientShapes: the shapes real clients send take the fast path, and give what the
// reference parser gives.
func TestFastParserCoversClientShapes(t *testing.T) {
	for _, in := range []string{
		parseCases[0].in, parseCases[1].in, parseCases[2].in, parseCases[3].in, parseCases[5].in,
		// bittorrent-tracker's browser client, keys in its order, white space allowed
		`{"numwant":50,"uploaded":0,"downloaded":0,"left":null,"event":"started","action":"announce","info_hash":` +
			bin(0x80) + `,"peer_id":` + bin(0x1f) + `,"offers":[{"offer":` + offerSDP + `,"offer_id":` + bin('"') + `}]}`,
		` { "action" : "announce" , "info_hash" : ` + bin('\\') + ` , "peer_id" : ` + bin(0xff) + ` , "offers" : [ ] } `,
	} {
		fast, ok := parseFast([]byte(in), false)
		if !ok {
			t.Fatalf("not on the fast path: %s", in)
		}
		ref, err := parseRequestSlow([]byte(in))
		if err != nil || !reflect.DeepEqual(fast, ref) {
			t.Fatalf("%s:\nfast %+v\nref  %+v %v", in, fast, ref, err)
		}
	}
	// Shapes left to the reference parser.
	for _, in := range []string{
		`{"action":"scrape"}`,
		`{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) + `,"Left":1}`,
		`{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) + `,"left":1.5}`,
		`{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) + `,"left":1,"left":2}`,
		`{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) + `,"trackerid":"x"}`,
		`{"action":"announce","info_hash":"\u0100aaaaaaaaaaaaaaaaaaa","peer_id":` + bin(2) + `}`,
	} {
		if _, ok := parseFast([]byte(in), false); ok {
			t.Fatalf("fast path took %s", in)
		}
	}
}

// TestEncodersMatchEncodingJSON: the hand-written encoders produce what json.Marshal of the reply types
// decodes to, for every byte value in the IDs.
func TestEncodersMatchEncodingJSON(t *testing.T) {
	same := func(t *testing.T, got []byte, want any) {
		t.Helper()
		wantJSON, _ := json.Marshal(want)
		var a, b any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		_ = json.Unmarshal(wantJSON, &b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("got  %s\nwant %s", got, wantJSON)
		}
	}
	sdp := json.RawMessage(offerSDP)
	for c := 0; c < 256; c += 20 {
		var ih, peer, offer ID
		for i := range ih {
			ih[i], peer[i], offer[i] = byte(c+i), byte(255-c-i), byte(c*7+i)
		}
		same(t, appendAnnounceReply(nil, 120, ih, c, 3), &AnnounceReply{Action: ActionAnnounce, Interval: 120,
			InfoHash: ih, Complete: c, Incomplete: 3})
		same(t, appendOfferMessage(nil, sdp, offer, peer, ih), &OfferMessage{Action: ActionAnnounce, Offer: sdp,
			OfferID: offer, PeerID: peer, InfoHash: ih})
		same(t, appendAnswerMessage(nil, sdp, offer, peer, ih), &AnswerMessage{Action: ActionAnnounce, Answer: sdp,
			OfferID: offer, PeerID: peer, InfoHash: ih})
		var back ID
		if b, _ := ih.MarshalJSON(); json.Unmarshal(b, &back) != nil || back != ih {
			t.Fatalf("ID %x encodes as %s", ih, b)
		}
	}
}
