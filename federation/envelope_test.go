package federation

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// openCase is an input to a Verifier of beta whose clock reads fixedNow, and what Open must make of it.
// The cases also seed FuzzOpen and its committed corpus (testdata/fuzz/FuzzOpen).
type openCase struct {
	name     string
	data     func(t testing.TB) []byte
	want     error // nil: opens
	noCorpus bool  // too big to be a useful fuzz seed
}

// genuine is a help request from alpha to beta, sealed at fixedNow.
func genuine(t testing.TB) []byte {
	return sealAt(t, "alpha", "beta", KindHelpRequest, "", testHelpRequest(), 0, "genuine")
}

// signedBody forges a correctly signed envelope from alpha to beta whose kind or body Seal would refuse.
func signedBody(kind Kind, body string) func(t testing.TB) []byte {
	return func(t testing.TB) []byte {
		return forge(t, testKey("alpha"), wireEnvelope{From: "alpha", To: "beta", Kind: kind, Body: json.RawMessage(body)}, true, nil)
	}
}

var openCases = []openCase{
	{name: "help-request", data: genuine},
	{name: "accept-reply", data: func(t testing.TB) []byte {
		return sealAt(t, "alpha", "beta", KindAccept, "AAAAAAAAAAAAAAAAAAAAAA", &Accept{InfoHash: testInfoHash, Capacity: 50}, 0, "accept")
	}},
	{name: "ready", data: func(t testing.TB) []byte {
		return sealAt(t, "gamma", "beta", KindReady, "", &Ready{Site: "www.example.org", InfoHash: testInfoHash,
			Address: netip.MustParseAddrPort("127.0.0.3:8080"), Proof: ProofOf([]byte("challenge"), []byte("piece"))}, 0, "ready")
	}},
	{name: "decline", data: func(t testing.TB) []byte {
		return sealAt(t, "gamma", "beta", KindDecline, "", &Decline{Site: "www.example.org", Reason: ReasonInCrowd}, 0, "decline")
	}},
	{name: "release", data: func(t testing.TB) []byte {
		return sealAt(t, "alpha", "beta", KindRelease, "", &Release{Site: "www.example.org", InfoHash: testInfoHash}, 0, "release")
	}},
	{name: "ack", data: func(t testing.TB) []byte {
		return sealAt(t, "alpha", "beta", KindAck, "", &Ack{}, 0, "ack")
	}},
	{name: "html-and-unicode-in-body", data: func(t testing.TB) []byte {
		return sealAt(t, "alpha", "beta", KindDecline, "", &Decline{Reason: "<b>&</b> \u2028 ünïcødé \U0001F600"}, 0, "unicode")
	}},
	{name: "just-within-window-past", data: func(t testing.TB) []byte {
		return sealAt(t, "alpha", "beta", KindAck, "", &Ack{}, -MaxSkew, "past")
	}},
	{name: "just-within-window-future", data: func(t testing.TB) []byte {
		return sealAt(t, "alpha", "beta", KindAck, "", &Ack{}, MaxSkew, "future")
	}},
	{name: "body-with-spaces-as-signed", data: func(t testing.TB) []byte {
		// Another implementation may send a body that is not compact; it is signed as sent.
		body := "{ \"site\" : \"www.example.org\",\n \"reason\": \"no spare capacity\" }"
		w := wireEnvelope{V: Version, From: "alpha", To: "beta", Kind: KindDecline, TS: fixedNow.UnixMilli(),
			Nonce: "BBBBBBBBBBBBBBBBBBBBBA", Body: json.RawMessage(`"BODY"`)}
		data, _ := json.Marshal(&w)
		w.Body = json.RawMessage(body)
		sig := b64.EncodeToString(ed25519.Sign(testKey("alpha"), signedBytes(&w)))
		data = append(data[:len(data)-1], `,"sig":"`+sig+`"}`...)
		return bytes.Replace(data, []byte(`"BODY"`), []byte(body), 1)
	}},

	{name: "oversize", want: ErrTooLarge, noCorpus: true, data: func(t testing.TB) []byte {
		return append(genuine(t), bytes.Repeat([]byte(" "), MaxEnvelopeSize)...)
	}},
	{name: "empty", want: ErrMalformed, data: func(t testing.TB) []byte { return nil }},
	{name: "not-json", want: ErrMalformed, data: func(t testing.TB) []byte { return []byte("help me") }},
	{name: "array", want: ErrMalformed, data: func(t testing.TB) []byte { return []byte(`[1,2]`) }},
	{name: "trailing-data", want: ErrMalformed, data: func(t testing.TB) []byte { return append(genuine(t), "{}"...) }},
	{name: "unknown-envelope-field", want: ErrMalformed, data: func(t testing.TB) []byte {
		return bytes.Replace(genuine(t), []byte(`{"v":1,`), []byte(`{"v":1,"admin":true,`), 1)
	}},
	{name: "bare-body-unsigned", want: ErrMalformed, data: func(t testing.TB) []byte {
		b, _ := json.Marshal(testHelpRequest())
		return b
	}},
	{name: "no-body", want: ErrMalformed, data: func(t testing.TB) []byte {
		return tamper(t, genuine(t), func(w *wireEnvelope) { w.Body = nil })
	}},
	{name: "short-nonce", want: ErrMalformed, data: func(t testing.TB) []byte {
		return tamper(t, genuine(t), func(w *wireEnvelope) { w.Nonce = w.Nonce[:21] })
	}},
	{name: "bad-re", want: ErrMalformed, data: func(t testing.TB) []byte {
		return tamper(t, genuine(t), func(w *wireEnvelope) { w.Re = "not a nonce" })
	}},
	{name: "version-0", want: ErrUnsupportedVersion, data: func(t testing.TB) []byte { return []byte(`{}`) }},
	{name: "version-2", want: ErrUnsupportedVersion, data: func(t testing.TB) []byte {
		return tamper(t, genuine(t), func(w *wireEnvelope) { w.V = 2 })
	}},
	{name: "unknown-sender", want: ErrUnknownSender, data: func(t testing.TB) []byte {
		return forge(t, testKey("mallory"), wireEnvelope{From: "mallory", To: "beta", Kind: KindHelpRequest,
			Body: json.RawMessage(mustJSON(testHelpRequest()))}, true, nil)
	}},
	{name: "unknown-key-as-member", want: ErrBadSignature, data: func(t testing.TB) []byte {
		return forge(t, testKey("mallory"), wireEnvelope{From: "alpha", To: "beta", Kind: KindHelpRequest,
			Body: json.RawMessage(mustJSON(testHelpRequest()))}, true, nil)
	}},
	{name: "other-members-key", want: ErrBadSignature, data: func(t testing.TB) []byte {
		return forge(t, testKey("gamma"), wireEnvelope{From: "alpha", To: "beta", Kind: KindHelpRequest,
			Body: json.RawMessage(mustJSON(testHelpRequest()))}, true, nil)
	}},
	{name: "wrong-recipient", want: ErrWrongRecipient, data: func(t testing.TB) []byte {
		return sealAt(t, "alpha", "gamma", KindHelpRequest, "", testHelpRequest(), 0, "genuine")
	}},
	{name: "unsigned", want: ErrUnsigned, data: func(t testing.TB) []byte {
		return tamper(t, genuine(t), func(w *wireEnvelope) { w.Sig = "" })
	}},
	{name: "body-changed", want: ErrBadSignature, data: func(t testing.TB) []byte {
		return bytes.Replace(genuine(t), []byte(`"capacity":200`), []byte(`"capacity":999`), 1)
	}},
	{name: "sender-changed", want: ErrBadSignature, data: func(t testing.TB) []byte {
		return tamper(t, genuine(t), func(w *wireEnvelope) { w.From = "gamma" })
	}},
	{name: "kind-changed", want: ErrBadSignature, data: func(t testing.TB) []byte {
		return tamper(t, sealAt(t, "alpha", "beta", KindAck, "", &Ack{}, 0, "ack"), func(w *wireEnvelope) { w.Kind = KindRelease })
	}},
	{name: "timestamp-changed", want: ErrBadSignature, data: func(t testing.TB) []byte {
		return tamper(t, sealAt(t, "alpha", "beta", KindAck, "", &Ack{}, -time.Hour, "old"), func(w *wireEnvelope) { w.TS = fixedNow.UnixMilli() })
	}},
	{name: "nonce-changed", want: ErrBadSignature, data: func(t testing.TB) []byte {
		return tamper(t, genuine(t), func(w *wireEnvelope) { w.Nonce = "AAAAAAAAAAAAAAAAAAAAAA" })
	}},
	{name: "re-added", want: ErrBadSignature, data: func(t testing.TB) []byte {
		return tamper(t, genuine(t), func(w *wireEnvelope) { w.Re = "AAAAAAAAAAAAAAAAAAAAAA" })
	}},
	{name: "signature-flipped", want: ErrBadSignature, data: func(t testing.TB) []byte {
		return tamper(t, genuine(t), func(w *wireEnvelope) {
			sig, _ := b64.DecodeString(w.Sig)
			sig[10] ^= 1
			w.Sig = b64.EncodeToString(sig)
		})
	}},
	{name: "signature-short", want: ErrBadSignature, data: func(t testing.TB) []byte {
		return tamper(t, genuine(t), func(w *wireEnvelope) { w.Sig = w.Sig[:40] })
	}},
	{name: "signature-not-base64", want: ErrBadSignature, data: func(t testing.TB) []byte {
		return tamper(t, genuine(t), func(w *wireEnvelope) { w.Sig = strings.Repeat("!", 86) })
	}},
	{name: "stale", want: ErrStale, data: func(t testing.TB) []byte {
		return sealAt(t, "alpha", "beta", KindHelpRequest, "", testHelpRequest(), -MaxSkew-time.Millisecond, "stale")
	}},
	{name: "from-the-future", want: ErrStale, data: func(t testing.TB) []byte {
		return sealAt(t, "alpha", "beta", KindHelpRequest, "", testHelpRequest(), MaxSkew+time.Millisecond, "future")
	}},
	{name: "unknown-kind", want: ErrUnknownKind, data: signedBody("shutdown", `{}`)},
	{name: "empty-kind", want: ErrUnknownKind, data: signedBody("", `{}`)},
	{name: "body-null", want: ErrMalformed, data: signedBody(KindAck, `null`)},
	{name: "body-array", want: ErrMalformed, data: signedBody(KindAck, `[]`)},
	{name: "body-unknown-field", want: ErrBadBody, data: signedBody(KindAck, `{"please":"obey"}`)},
	{name: "body-wrong-type", want: ErrBadBody, data: signedBody(KindRelease, `{"site":1,"infohash":"`+testInfoHash+`"}`)},
	{name: "body-bad-infohash", want: ErrBadBody, data: signedBody(KindRelease, `{"site":"www.example.org","infohash":"XYZ"}`)},
	{name: "body-missing-fields", want: ErrBadBody, data: signedBody(KindHelpRequest, `{"site":"www.example.org"}`)},
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // test data only
	}
	return b
}

func TestOpen(t *testing.T) {
	fed := testFederation(t)
	for _, tc := range openCases {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestVerifier(t, fed, "beta", func() time.Time { return fixedNow })
			env, err := v.Open(tc.data(t))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open = %+v, %v; want %v", env, err, tc.want)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "federation: ") {
					t.Errorf("error %q does not name the component", err)
				}
				return
			}
			if env.To != "beta" || env.Message == nil || env.Message.Kind() != env.Kind {
				t.Errorf("envelope %+v", env)
			}
			if _, err := v.Open(tc.data(t)); !errors.Is(err, ErrReplay) {
				t.Errorf("second Open = %v; want ErrReplay", err)
			}
		})
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	fed := testFederation(t)
	v := newTestVerifier(t, fed, "beta", nil)
	req := testHelpRequest()
	data, err := Seal(testKey("alpha"), "alpha", "beta", KindHelpRequest, req)
	if err != nil {
		t.Fatal(err)
	}
	env, err := v.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	if env.From != "alpha" || env.To != "beta" || env.Kind != KindHelpRequest || env.Re != "" || len(env.Nonce) != 22 {
		t.Errorf("envelope header %+v", env)
	}
	if d := time.Since(env.Time); d < 0 || d > time.Minute {
		t.Errorf("envelope time %v", env.Time)
	}
	got, ok := env.Message.(*HelpRequest)
	if !ok {
		t.Fatalf("message %T", env.Message)
	}
	if !got.Until.Equal(req.Until) {
		t.Errorf("until %v, want %v", got.Until, req.Until)
	}
	got.Until = req.Until
	if !reflect.DeepEqual(got, req) {
		t.Errorf("message\n%+v\nwant\n%+v", got, req)
	}
	var decoded HelpRequest
	if err := json.Unmarshal(env.Body, &decoded); err != nil || decoded.InfoHash != req.InfoHash {
		t.Errorf("body %s: %v", env.Body, err)
	}
	// Two seals of one message differ (fresh nonce), and both open.
	again, _ := Seal(testKey("alpha"), "alpha", "beta", KindHelpRequest, req)
	if bytes.Equal(again, data) {
		t.Fatal("two seals are identical")
	}
	if _, err := v.Open(again); err != nil {
		t.Fatal(err)
	}
	// A raw JSON body seals too.
	raw, err := Seal(testKey("gamma"), "gamma", "beta", KindDecline, json.RawMessage(`{ "reason" : "no spare capacity" }`))
	if err != nil {
		t.Fatal(err)
	}
	env, err = v.Open(raw)
	if err != nil || env.Message.(*Decline).Reason != ReasonNoCapacity {
		t.Fatalf("Open raw = %+v, %v", env, err)
	}
}

func TestSealRefuses(t *testing.T) {
	key := testKey("alpha")
	tests := []struct {
		name     string
		key      ed25519.PrivateKey
		from, to string
		kind     Kind
		body     any
		want     error
	}{
		{"bad key", key[:32], "alpha", "beta", KindAck, &Ack{}, ErrKeyFile},
		{"bad sender name", key, "al pha", "beta", KindAck, &Ack{}, ErrBadName},
		{"no recipient", key, "alpha", "", KindAck, &Ack{}, ErrBadName},
		{"unknown kind", key, "alpha", "beta", "shutdown", map[string]any{}, ErrUnknownKind},
		{"kind and body disagree", key, "alpha", "beta", KindRelease, &Ack{}, ErrBadBody},
		{"invalid body", key, "alpha", "beta", KindRelease, &Release{Site: "x"}, ErrBadBody},
		{"null body", key, "alpha", "beta", KindAck, nil, ErrBadBody},
		{"unmarshalable body", key, "alpha", "beta", KindAck, func() {}, ErrBadBody},
		{"invalid raw body", key, "alpha", "beta", KindAck, json.RawMessage(`{`), ErrBadBody},
		{"unknown field", key, "alpha", "beta", KindAck, map[string]any{"x": 1}, ErrBadBody},
		{"too many webseeds", key, "alpha", "beta", KindHelpRequest, func() *HelpRequest {
			r := testHelpRequest()
			r.Webseeds = make([]string, MaxWebseeds+1)
			for i := range r.Webseeds {
				r.Webseeds[i] = "http://127.0.0.1/"
			}
			return r
		}(), ErrBadBody},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := Seal(tc.key, tc.from, tc.to, tc.kind, tc.body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Seal = %q, %v; want %v", data, err, tc.want)
			}
		})
	}
}

func TestSealTooLarge(t *testing.T) {
	// Only many long webseeds make a valid body exceed the limit.
	r := testHelpRequest()
	r.Webseeds = make([]string, MaxWebseeds)
	for i := range r.Webseeds {
		r.Webseeds[i] = "http://127.0.0.1/" + strings.Repeat("x", MaxEnvelopeSize/MaxWebseeds)
	}
	if _, err := Seal(testKey("alpha"), "alpha", "beta", KindHelpRequest, r); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Seal = %v; want ErrTooLarge", err)
	}
}

// challengeValue is an ACME DNS-01 TXT value.
const challengeValue = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"

// TestOldMessagesParse: bodies as members that predate TLS helping send them still open, with TLS off.
func TestOldMessagesParse(t *testing.T) {
	old := map[Kind]string{
		KindHelpRequest: string(mustJSON(testHelpRequest())),
		KindReady:       `{"site":"www.example.org","infohash":"` + testInfoHash + `","address":"127.0.0.2:8080","proof":"` + ProofOf(nil, nil) + `"}`,
	}
	for kind, body := range old {
		m, err := decodeBody(kind, []byte(body))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		switch m := m.(type) {
		case *HelpRequest:
			if m.TLS {
				t.Errorf("old help request reads as TLS")
			}
		case *Ready:
			if m.TLSAddress.IsValid() {
				t.Errorf("old ready has a TLS address %v", m.TLSAddress)
			}
		}
		if again := mustJSON(m); string(again) != body {
			t.Errorf("%s: a plain-HTTP message changed on the wire:\n%s\n%s", kind, again, body)
		}
	}
}

func TestMessageValidate(t *testing.T) {
	ok := testHelpRequest()
	mod := func(f func(r *HelpRequest)) *HelpRequest { r := *testHelpRequest(); f(&r); return &r }
	ready := func(f func(r *Ready)) *Ready {
		r := Ready{Site: "s", InfoHash: testInfoHash, Address: netip.MustParseAddrPort("127.0.0.2:80"),
			Proof: ProofOf(nil, nil)}
		f(&r)
		return &r
	}
	tests := []struct {
		name string
		m    Message
		ok   bool
	}{
		{"help request", ok, true},
		{"no site", mod(func(r *HelpRequest) { r.Site = "" }), false},
		{"control character in site", mod(func(r *HelpRequest) { r.Site = "a\nb" }), false},
		{"long version", mod(func(r *HelpRequest) { r.Version = strings.Repeat("v", MaxTextLen+1) }), false},
		{"upper-case infohash", mod(func(r *HelpRequest) { r.InfoHash = strings.ToUpper(testInfoHash) }), false},
		{"v2 infohash", mod(func(r *HelpRequest) { r.InfoHash = testInfoHash + "0123456789abcdef01234567" }), false},
		{"relative origin", mod(func(r *HelpRequest) { r.Origin = "/index.html" }), false},
		{"file webseed", mod(func(r *HelpRequest) { r.Webseeds = []string{"file:///etc/passwd"} }), false},
		{"no webseeds", mod(func(r *HelpRequest) { r.Webseeds = nil }), true},
		{"udp tracker", mod(func(r *HelpRequest) { r.Tracker = "udp://127.0.0.1:6969" }), true},
		{"no tracker", mod(func(r *HelpRequest) { r.Tracker = "" }), false},
		{"zero capacity", mod(func(r *HelpRequest) { r.Capacity = 0 }), false},
		{"no until", mod(func(r *HelpRequest) { r.Until = time.Time{} }), false},
		{"no challenge", mod(func(r *HelpRequest) { r.Challenge = "" }), true},
		{"short challenge", mod(func(r *HelpRequest) { r.Challenge = "0011" }), false},
		{"accept", &Accept{InfoHash: testInfoHash, Capacity: 1}, true},
		{"accept without capacity", &Accept{InfoHash: testInfoHash}, false},
		{"accept with a peer address", &Accept{InfoHash: testInfoHash, Capacity: 1, PeerAddress: "192.0.2.7:6881"}, true},
		{"accept with a peer name", &Accept{InfoHash: testInfoHash, Capacity: 1, PeerAddress: "helper.example:6881"}, false},
		{"accept with a peer address without port", &Accept{InfoHash: testInfoHash, Capacity: 1, PeerAddress: "192.0.2.7:0"}, false},
		{"ready", ready(func(*Ready) {}), true},
		{"ready without address", ready(func(r *Ready) { r.Address = netip.AddrPort{} }), false},
		{"ready on port 0", ready(func(r *Ready) { r.Address = netip.MustParseAddrPort("127.0.0.2:0") }), false},
		{"ready on 0.0.0.0", ready(func(r *Ready) { r.Address = netip.MustParseAddrPort("0.0.0.0:80") }), false},
		{"ready without proof", ready(func(r *Ready) { r.Proof = "" }), false},
		{"ready with TLS", ready(func(r *Ready) { r.TLSAddress = netip.MustParseAddrPort("127.0.0.2:443") }), true},
		{"ready with TLS on port 0", ready(func(r *Ready) { r.TLSAddress = netip.MustParseAddrPort("127.0.0.2:0") }), false},
		{"ready with TLS on ::", ready(func(r *Ready) { r.TLSAddress = netip.MustParseAddrPort("[::]:443") }), false},
		{"help request with TLS", mod(func(r *HelpRequest) { r.TLS = true }), true},
		{"challenge", &Challenge{Site: "s", Value: challengeValue}, true},
		{"challenge removal", &Challenge{Site: "s", Value: challengeValue, Remove: true}, true},
		{"challenge without site", &Challenge{Value: challengeValue}, false},
		{"challenge, short value", &Challenge{Site: "s", Value: challengeValue[1:]}, false},
		{"challenge, long value", &Challenge{Site: "s", Value: challengeValue + "A"}, false},
		{"challenge, padded value", &Challenge{Site: "s", Value: challengeValue[1:] + "="}, false},
		{"challenge, space in value", &Challenge{Site: "s", Value: challengeValue[1:] + " "}, false},
		{"decline", &Decline{Reason: ReasonNoCapacity}, true},
		{"decline without reason", &Decline{Site: "s"}, false},
		{"decline with bad infohash", &Decline{Reason: "r", InfoHash: "x"}, false},
		{"release", &Release{Site: "s", InfoHash: testInfoHash}, true},
		{"release without infohash", &Release{Site: "s"}, false},
		{"ack", &Ack{}, true},
	}
	for _, tc := range tests {
		err := tc.m.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadBody)) {
			t.Errorf("%s: Validate = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestProof(t *testing.T) {
	ch := []byte("0123456789abcdef")
	if ProofOf(ch, []byte("piece")) == ProofOf(ch, []byte("piecf")) || ProofOf(ch, []byte("p")) == ProofOf([]byte("x"), []byte("p")) {
		t.Error("proof does not depend on its inputs")
	}
	seen := map[int]bool{}
	for i := range 200 {
		p := ChallengePiece([]byte(fmt.Sprint(i)), 7)
		if p < 0 || p >= 7 {
			t.Fatalf("piece %d of 7", p)
		}
		seen[p] = true
	}
	if len(seen) != 7 {
		t.Errorf("challenges select only pieces %v of 7", seen)
	}
	if ChallengePiece(ch, 0) != 0 {
		t.Error("no pieces")
	}
}

func TestReplayCache(t *testing.T) {
	fed := testFederation(t)
	var offset time.Duration
	v, err := NewVerifier(VerifierConfig{Federation: fed, Self: "beta", Now: fixedClock(&offset), MaxNonces: 3,
		NotBefore: fixedNow.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([][]byte, 5)
	for i := range msgs {
		msgs[i] = sealAt(t, "alpha", "beta", KindAck, "", &Ack{}, 0, fmt.Sprint("replay", i))
	}
	for i := range 3 {
		if _, err := v.Open(msgs[i]); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	// A sender at the bound is refused rather than having its nonces forgotten; other senders are not.
	if _, err := v.Open(msgs[3]); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("fourth message: %v; want ErrReplayCacheFull", err)
	}
	if _, err := v.Open(sealAt(t, "gamma", "beta", KindAck, "", &Ack{}, 0, "gamma")); err != nil {
		t.Fatalf("another sender: %v", err)
	}
	// Refused, the fourth did not use up its nonce: once the first three leave the window, it opens.
	offset = MaxSkew
	if _, err := v.Open(msgs[0]); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay at the edge of the window: %v; want ErrReplay", err)
	}
	if _, err := v.Open(msgs[3]); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("still full at the edge of the window: %v", err)
	}
	offset = MaxSkew + time.Millisecond
	fresh := sealAt(t, "alpha", "beta", KindAck, "", &Ack{}, offset, "fresh")
	if _, err := v.Open(fresh); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if _, err := v.Open(msgs[0]); !errors.Is(err, ErrStale) {
		t.Fatalf("replay after the window: %v; want ErrStale", err)
	}
	if n := len(v.nonces["alpha"]); n != 1 {
		t.Errorf("%d nonces remembered for alpha, want 1", n)
	}
}

// TestRestart: a server that restarts has forgotten the nonces it saw, so it refuses what was sealed before it
// started, and a message it accepted just before the restart cannot be replayed to it.
func TestRestart(t *testing.T) {
	fed := testFederation(t)
	var offset time.Duration
	clock := fixedClock(&offset)
	msg := sealAt(t, "alpha", "beta", KindAck, "", &Ack{}, 0, "before restart")
	first, err := NewVerifier(VerifierConfig{Federation: fed, Self: "beta", Now: clock, NotBefore: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Open(msg); err != nil {
		t.Fatal(err)
	}
	offset = time.Second
	restarted, err := NewVerifier(VerifierConfig{Federation: fed, Self: "beta", Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.Open(msg); !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "before this server started") {
		t.Fatalf("replay after a restart: %v; want ErrStale", err)
	}
	if _, err := restarted.Open(sealAt(t, "alpha", "beta", KindAck, "", &Ack{}, offset, "after restart")); err != nil {
		t.Fatalf("message sealed after the restart: %v", err)
	}
}

func TestNewVerifier(t *testing.T) {
	fed := testFederation(t)
	if _, err := NewVerifier(VerifierConfig{Self: "beta"}); err == nil {
		t.Error("no federation accepted")
	}
	if _, err := NewVerifier(VerifierConfig{Federation: fed, Self: "mallory"}); !errors.Is(err, ErrNotAMember) {
		t.Errorf("self not a member: %v", err)
	}
	v, err := NewVerifier(VerifierConfig{Federation: fed, Self: "beta"})
	if err != nil {
		t.Fatal(err)
	}
	if v.skew != MaxSkew || v.maxNonces != MaxNoncesPerSender || v.now == nil || v.Self() != "beta" || v.Federation() != fed ||
		time.Since(v.notBefore) > time.Minute {
		t.Errorf("defaults not filled: %+v", v)
	}
}
