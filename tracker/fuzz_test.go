package tracker

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzParseRequest checks that no input panics the parser, that every result carries an action for the reply,
// and that every accepted announce survives a round trip through the client's encoder.
func FuzzParseRequest(f *testing.F) {
	for _, tc := range parseCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Whatever the fast parser accepts, the reference parser accepts identically.
		if fast, ok := parseFast(data, false); ok {
			ref, err := parseRequestSlow(data)
			if err != nil || !reflect.DeepEqual(fast, ref) {
				t.Fatalf("fast parser accepted what the reference parser gives as %+v, %v:\n%+v\n%s", ref, err, fast, data)
			}
		}
		r, err := ParseRequest(data)
		if r == nil || (r.Action != ActionAnnounce && r.Action != ActionScrape) {
			t.Fatalf("no action for the reply: %+v", r)
		}
		if err != nil || r.Action != ActionAnnounce || r.IsAnswer() {
			return
		}
		offers := make([]wireOffer, len(r.Offers))
		for i, o := range r.Offers {
			offers[i] = wireOffer{o.ID, o.SDP}
		}
		b, err := json.Marshal(map[string]any{
			"action": "announce", "info_hash": r.InfoHashes[0], "peer_id": r.PeerID, "event": r.Event,
			"numwant": r.NumWant, "uploaded": r.Uploaded, "downloaded": r.Downloaded, "left": r.Left, "offers": offers,
		})
		if err != nil {
			t.Fatal(err)
		}
		r2, err := ParseRequest(b)
		if err != nil {
			t.Fatalf("re-encoded request refused: %v\n%s", err, b)
		}
		if r2.InfoHashes[0] != r.InfoHashes[0] || r2.PeerID != r.PeerID || r2.Event != r.Event || r2.Left != r.Left ||
			r2.NumWant != r.NumWant || len(r2.Offers) != len(r.Offers) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", r, r2)
		}
	})
}
