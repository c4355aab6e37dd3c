package federation

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"
)

// VerifierConfig configures a Verifier. Zero fields other than Federation and Self take defaults.
type VerifierConfig struct {
	// Federation lists the members whose messages are accepted, with their keys. Required.
	Federation *Federation
	// Self is this server's member name: envelopes addressed to any other member are refused, so a message
	// one member received cannot be replayed to another. Required; see Federation.Self.
	Self string
	// Now is the clock against which timestamps are checked and replies are stamped. Default time.Now.
	Now func() time.Time
	// Skew is how far a timestamp may lie from Now, either way. Default MaxSkew.
	Skew time.Duration
	// MaxNonces bounds the remembered nonces per sender. Default MaxNoncesPerSender.
	MaxNonces int
	// NotBefore refuses envelopes sealed earlier (ErrStale). The replay cache lives in memory, so a server that
	// restarts would otherwise accept, once more, what it accepted in the window before. Default: Now() when
	// the Verifier is made; a message sealed just before that is refused, and its sender seals it again.
	NotBefore time.Time
}

// Verifier opens envelopes sent to one member: it checks each against the federation's keys, the clock and
// the nonces it has seen. It is safe for concurrent use; share one between Handler and Client so that
// requests and replies draw on one replay cache.
type Verifier struct {
	fed       *Federation
	self      string
	now       func() time.Time
	skew      time.Duration
	maxNonces int
	notBefore time.Time

	mu     sync.Mutex
	nonces map[string]map[string]time.Time // sender → nonce → when it leaves the window
}

// NewVerifier returns a Verifier for cfg, filling defaults.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Federation == nil {
		return nil, errors.New("federation: verifier needs a federation")
	}
	if _, ok := cfg.Federation.Member(cfg.Self); !ok {
		return nil, fmt.Errorf("federation: verifier for %q: %w", cfg.Self, ErrNotAMember)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Skew <= 0 {
		cfg.Skew = MaxSkew
	}
	if cfg.MaxNonces <= 0 {
		cfg.MaxNonces = MaxNoncesPerSender
	}
	if cfg.NotBefore.IsZero() {
		cfg.NotBefore = cfg.Now()
	}
	return &Verifier{fed: cfg.Federation, self: cfg.Self, now: cfg.Now, skew: cfg.Skew, maxNonces: cfg.MaxNonces,
		notBefore: cfg.NotBefore.Truncate(time.Millisecond), nonces: make(map[string]map[string]time.Time)}, nil
}

// Federation returns the federation the Verifier checks against.
func (v *Verifier) Federation() *Federation { return v.fed }

// Self returns the name of the member the Verifier opens envelopes for.
func (v *Verifier) Self() string { return v.self }

// Open verifies a sealed envelope and returns it with its body decoded. In order, it refuses: more than
// MaxEnvelopeSize bytes (ErrTooLarge), anything but one well-formed envelope (ErrMalformed,
// ErrUnsupportedVersion), a sender not in the federation (ErrUnknownSender), an envelope addressed to
// another member (ErrWrongRecipient), no signature (ErrUnsigned), a signature that is not the sender's over
// this envelope (ErrBadSignature), a timestamp more than the skew from now or before NotBefore (ErrStale), an unknown kind
// (ErrUnknownKind), a body that does not validate (ErrBadBody), and a nonce already seen from this sender
// (ErrReplay, or ErrReplayCacheFull when the sender has too many messages in the window). Only an envelope
// that passes every check has its nonce remembered. Errors wrap the sentinel with %w.
func (v *Verifier) Open(data []byte) (*Envelope, error) {
	w, err := parseEnvelope(data)
	if err != nil {
		return nil, err
	}
	m, ok := v.fed.Member(w.From)
	if !ok {
		return nil, fmt.Errorf("federation: from %q: %w", w.From, ErrUnknownSender)
	}
	if w.To != v.self {
		return nil, fmt.Errorf("federation: from %q: to %q, this is %q: %w", w.From, w.To, v.self, ErrWrongRecipient)
	}
	if w.Sig == "" {
		return nil, fmt.Errorf("federation: from %q: %w", w.From, ErrUnsigned)
	}
	sig, err := b64.DecodeString(w.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize || !ed25519.Verify(m.Key, signedBytes(w), sig) {
		return nil, fmt.Errorf("federation: from %q: %w", w.From, ErrBadSignature)
	}
	now := v.now()
	ts := time.UnixMilli(w.TS)
	if d := now.Sub(ts); d > v.skew || d < -v.skew {
		return nil, fmt.Errorf("federation: from %q: timestamp %s is %s from now (%s), allowed ±%s: %w",
			w.From, ts.UTC().Format(time.RFC3339Nano), d.Round(time.Millisecond), now.UTC().Format(time.RFC3339), v.skew, ErrStale)
	}
	if ts.Before(v.notBefore) {
		return nil, fmt.Errorf("federation: from %q: sealed at %s, before this server started at %s: %w",
			w.From, ts.UTC().Format(time.RFC3339Nano), v.notBefore.UTC().Format(time.RFC3339Nano), ErrStale)
	}
	msg, err := decodeBody(w.Kind, w.Body)
	if err != nil {
		return nil, fmt.Errorf("federation: from %q: %w", w.From, err)
	}
	if err := v.remember(w.From, w.Nonce, ts.Add(v.skew), now); err != nil {
		return nil, fmt.Errorf("federation: from %q: nonce %s: %w", w.From, w.Nonce, err)
	}
	return &Envelope{From: w.From, To: w.To, Kind: w.Kind, Time: ts, Nonce: w.Nonce, Re: w.Re, Body: w.Body,
		Message: msg}, nil
}

// remember records a sender's nonce until it leaves the window at expiry, refusing one already recorded.
// A nonce past its expiry may linger until the sender's cache fills, but never lets a replay through: its
// envelope's timestamp is then out of the window, which Open checks first.
func (v *Verifier) remember(sender, nonce string, expiry, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	seen := v.nonces[sender]
	if seen == nil {
		seen = make(map[string]time.Time)
		v.nonces[sender] = seen
	}
	if _, dup := seen[nonce]; dup {
		return ErrReplay
	}
	if len(seen) >= v.maxNonces {
		for n, exp := range seen {
			if exp.Before(now) {
				delete(seen, n)
			}
		}
		if len(seen) >= v.maxNonces {
			return ErrReplayCacheFull
		}
	}
	seen[nonce] = expiry
	return nil
}

// openReply opens the reply to a request: an envelope from the member the request went to, answering
// the request's nonce.
func (v *Verifier) openReply(data []byte, from, re string) (*Envelope, error) {
	env, err := v.Open(data)
	if err != nil {
		return nil, err
	}
	if env.From != from || env.Re != re {
		return nil, fmt.Errorf("federation: reply from %q answering %q, want from %q answering %q: %w",
			env.From, env.Re, from, re, ErrNotInReplyTo)
	}
	return env, nil
}
