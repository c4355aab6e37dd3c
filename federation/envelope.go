package federation

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Envelope is an opened, verified message.
type Envelope struct {
	From  string    // the sending member; its key signed the envelope
	To    string    // the member the envelope is addressed to
	Kind  Kind      // what Message is
	Time  time.Time // when it was sealed, by the sender's clock (millisecond precision)
	Nonce string    // random, unique per message (22 characters of base64url)
	// Re is, in a reply, the Nonce of the request it answers; empty in a request.
	Re string
	// Body is the message as signed: compact JSON.
	Body json.RawMessage
	// Message is Body decoded and validated: *HelpRequest, *Accept, *Ready, *Decline, *Release or *Ack.
	Message Message
}

// wireEnvelope is an envelope on the wire, one JSON object:
//
//	{"v":1,"from":"alpha","to":"beta","kind":"help-request","ts":1767225600000,
//	 "nonce":"<16 random bytes, unpadded base64url>","re":"<request's nonce, replies only>",
//	 "body":{…},"sig":"<64-byte Ed25519 signature, unpadded base64url>"}
//
// ts is milliseconds since the Unix epoch. The signature covers every other field, through signedBytes.
type wireEnvelope struct {
	V     int             `json:"v"`
	From  string          `json:"from"`
	To    string          `json:"to"`
	Kind  Kind            `json:"kind"`
	TS    int64           `json:"ts"`
	Nonce string          `json:"nonce"`
	Re    string          `json:"re,omitempty"`
	Body  json.RawMessage `json:"body"`
	Sig   string          `json:"sig,omitempty"`
}

// nonceSize is the random part of an envelope: 128 bits never repeat by chance.
const nonceSize = 16

// sigContext starts the signed bytes, so that a signature over an envelope can be mistaken for no other
// signature made with a member's key, and a later format (another Version) for no earlier one.
const sigContext = "swarmgate federation envelope v1\x00"

// signedBytes is what an envelope's signature covers: sigContext, then the fields in a fixed order, each
// string as a 4-byte big-endian length and its bytes, ts as 8 big-endian bytes. Body is signed exactly as it
// appears on the wire, so the signature never depends on how JSON objects happen to be ordered or spaced.
func signedBytes(w *wireEnvelope) []byte {
	b := make([]byte, 0, len(sigContext)+64+len(w.Body))
	b = append(b, sigContext...)
	b = appendField(b, w.From)
	b = appendField(b, w.To)
	b = appendField(b, string(w.Kind))
	b = binary.BigEndian.AppendUint64(b, uint64(w.TS))
	b = appendField(b, w.Nonce)
	b = appendField(b, w.Re)
	b = appendField(b, string(w.Body))
	return b
}

func appendField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

var b64 = base64.RawURLEncoding.Strict()

// Seal makes a signed envelope of kind from member from to member to, carrying body (a Message of that kind,
// or any value that marshals to one, such as json.RawMessage). It refuses a body that does not validate and an
// envelope larger than MaxEnvelopeSize, so that what Seal makes, a Verifier opens.
func Seal(key ed25519.PrivateKey, from, to string, kind Kind, body any) ([]byte, error) {
	data, _, err := seal(key, header{from: from, to: to, kind: kind}, body, time.Now(), rand.Reader)
	return data, err
}

// header is what Seal's caller chooses about an envelope; re is set only in replies.
type header struct {
	from, to string
	kind     Kind
	re       string
}

// seal makes an envelope and returns it with its nonce.
func seal(key ed25519.PrivateKey, h header, body any, now time.Time, random io.Reader) (data []byte, nonce string, err error) {
	if _, err := publicKey(key); err != nil {
		return nil, "", err
	}
	if !validName(h.from) || !validName(h.to) {
		return nil, "", fmt.Errorf("federation: seal from %q to %q: %w", h.from, h.to, ErrBadName)
	}
	if m, ok := body.(Message); ok && m.Kind() != h.kind {
		return nil, "", fmt.Errorf("federation: seal %s: body is a %s: %w", h.kind, m.Kind(), ErrBadBody)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, "", fmt.Errorf("federation: seal %s: %w: %w", h.kind, ErrBadBody, err)
	}
	if _, err := decodeBody(h.kind, raw); err != nil {
		return nil, "", fmt.Errorf("federation: seal %s: %w", h.kind, err)
	}
	n := make([]byte, nonceSize)
	if _, err := io.ReadFull(random, n); err != nil {
		return nil, "", fmt.Errorf("federation: seal %s: nonce: %w", h.kind, err)
	}
	w := wireEnvelope{V: Version, From: h.from, To: h.to, Kind: h.kind, TS: now.UnixMilli(),
		Nonce: b64.EncodeToString(n), Re: h.re, Body: raw}
	w.Sig = b64.EncodeToString(ed25519.Sign(key, signedBytes(&w)))
	data, err = json.Marshal(&w)
	if err != nil {
		return nil, "", fmt.Errorf("federation: seal %s: %w", h.kind, err)
	}
	if len(data) > MaxEnvelopeSize {
		return nil, "", fmt.Errorf("federation: seal %s: %d bytes, at most %d: %w", h.kind, len(data), MaxEnvelopeSize, ErrTooLarge)
	}
	return data, w.Nonce, nil
}

// decodeBody decodes and validates a body of kind. Unknown fields are refused: a field the receiver would
// ignore is one the sender signed for nothing.
func decodeBody(kind Kind, raw []byte) (Message, error) {
	m, ok := newMessage(kind)
	if !ok {
		return nil, fmt.Errorf("kind %q: %w", kind, ErrUnknownKind)
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("%s body: must be a JSON object: %w", kind, ErrBadBody)
	}
	if err := strictUnmarshal(raw, m); err != nil {
		return nil, fmt.Errorf("%s body: %w: %w", kind, ErrBadBody, err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%s body: %w", kind, err)
	}
	return m, nil
}

// strictUnmarshal decodes one JSON value into v, refusing unknown fields and trailing data.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

// parseEnvelope decodes an envelope's JSON and checks its form, without checking who sent it.
func parseEnvelope(data []byte) (*wireEnvelope, error) {
	if len(data) > MaxEnvelopeSize {
		return nil, fmt.Errorf("federation: %d bytes, at most %d: %w", len(data), MaxEnvelopeSize, ErrTooLarge)
	}
	var w wireEnvelope
	if err := strictUnmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("federation: %w: %w", ErrMalformed, err)
	}
	if w.V != Version {
		return nil, fmt.Errorf("federation: version %d, want %d: %w", w.V, Version, ErrUnsupportedVersion)
	}
	if len(w.Body) == 0 || w.Body[0] != '{' {
		return nil, fmt.Errorf("federation: body must be a JSON object: %w", ErrMalformed)
	}
	if n, err := b64.DecodeString(w.Nonce); err != nil || len(n) != nonceSize {
		return nil, fmt.Errorf("federation: nonce %q: want %d bytes in unpadded base64url: %w", w.Nonce, nonceSize, ErrMalformed)
	}
	if w.Re != "" {
		if n, err := b64.DecodeString(w.Re); err != nil || len(n) != nonceSize {
			return nil, fmt.Errorf("federation: re %q: want a nonce: %w", w.Re, ErrMalformed)
		}
	}
	return &w, nil
}
