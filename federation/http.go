package federation

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// HandlerFunc handles one verified request. Its reply (nil means Ack) is sealed and sent back to the
// sender; an error is answered with a plain-text error and the status statusOf gives it (500 for errors
// that wrap none of this package's sentinels). To decline, return a *Decline as the reply.
type HandlerFunc func(ctx context.Context, env *Envelope) (reply Message, err error)

// Handler returns the federation endpoint: it reads a POSTed envelope (at most MaxEnvelopeSize bytes), opens
// it with v, calls fn, and answers with fn's reply sealed with key and addressed to the sender. A message that
// does not verify never reaches fn: it is logged and answered with a plain-text error (see statusOf).
// log may be nil.
func Handler(v *Verifier, key ed25519.PrivateKey, log *slog.Logger, fn HandlerFunc) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &handler{v: v, key: key, log: log, fn: fn}
}

type handler struct {
	v   *Verifier
	key ed25519.PrivateKey
	log *slog.Logger
	fn  HandlerFunc
}

var _ http.Handler = (*handler)(nil)

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, r, nil, fmt.Errorf("federation: %s: %w", r.Method, ErrMethod))
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxEnvelopeSize))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			err = fmt.Errorf("federation: more than %d bytes: %w", MaxEnvelopeSize, ErrTooLarge)
		} else {
			err = fmt.Errorf("federation: reading request: %w: %w", ErrMalformed, err) // a 400, not a server error
		}
		h.fail(w, r, nil, err)
		return
	}
	env, err := h.v.Open(data)
	if err == nil && env.Re != "" {
		err = fmt.Errorf("federation: from %q: %s answering %s: %w", env.From, env.Kind, env.Re, ErrNotARequest)
	}
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	reply, err := h.fn(r.Context(), env)
	if err != nil {
		h.fail(w, r, env, err)
		return
	}
	if reply == nil {
		reply = &Ack{}
	}
	out, _, err := seal(h.key, header{from: h.v.self, to: env.From, kind: reply.Kind(), re: env.Nonce}, reply,
		h.v.now(), rand.Reader)
	if err != nil {
		h.fail(w, r, env, fmt.Errorf("federation: sealing %s reply: %w", reply.Kind(), err))
		return
	}
	h.log.Debug("federation: message", slog.String("from", env.From), slog.String("kind", string(env.Kind)),
		slog.String("reply", string(reply.Kind())), slog.String("remote", r.RemoteAddr))
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// fail logs why a request was refused and answers it with a plain-text error.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, env *Envelope, err error) {
	code := statusOf(err)
	attrs := []any{slog.String("remote", r.RemoteAddr), slog.Int("status", code), slog.Any("err", err)}
	if env != nil {
		attrs = append(attrs, slog.String("from", env.From), slog.String("kind", string(env.Kind)))
	}
	if code >= 500 {
		h.log.Error("federation: request failed", attrs...)
	} else {
		h.log.Warn("federation: message refused", attrs...)
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Ed25519 realm="swarmgate federation"`)
	}
	http.Error(w, err.Error(), code)
}

// statusOf maps an error to the HTTP status that answers it: 401 for a message that cannot be shown to come,
// fresh, from a member; 400 for one that is authentic or unreadable but not a valid request; 403 for one
// that asks for what its sender may not have; 413 and 429
// for the limits; 500 for anything else.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrReplayCacheFull):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrUnknownSender), errors.Is(err, ErrWrongRecipient), errors.Is(err, ErrUnsigned),
		errors.Is(err, ErrBadSignature), errors.Is(err, ErrStale), errors.Is(err, ErrReplay):
		return http.StatusUnauthorized
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrUnsupportedVersion), errors.Is(err, ErrUnknownKind),
		errors.Is(err, ErrBadBody), errors.Is(err, ErrNotARequest):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// RefusedError is the error Client.Send returns when the member answers with a status other than 200. It
// matches ErrRefused with errors.Is.
type RefusedError struct {
	Member  string
	Status  int    // the HTTP status
	Message string // the member's explanation, at most MaxTextLen bytes
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("federation: %s refused the message: %d %s: %q", e.Member, e.Status, http.StatusText(e.Status), e.Message)
}

func (e *RefusedError) Unwrap() error { return ErrRefused }

// Client sends signed messages to other members and checks their signed replies.
type Client struct {
	// Key signs the messages; it must be the key the federation lists for Name.
	Key ed25519.PrivateKey
	// Name is this server's member name (Federation.Self).
	Name string
	// Verifier checks replies: the members' keys, the clock, the replay cache. Its Self must be Name.
	Verifier *Verifier
	// HTTP sends the requests; nil means a NewHTTPClient, made for each Send (no redirects followed,
	// connections checked by GuardControl). Its timeout, or the context's, bounds a Send. Each request's
	// context carries the member's AllowPrivate (WithPrivate), for a transport that dials with GuardControl.
	HTTP *http.Client
}

// Send seals body as a message of kind to the member whose URL is memberURL, POSTs it to memberURL + Path,
// and verifies the reply: signed by that member, addressed to this one, answering this request, fresh and not
// replayed. A Decline is returned as a *DeclinedError (errors.Is ErrDeclined); any other reply is decoded into
// replyOut, which may be nil, an *Envelope (filled with the whole reply), or a pointer to a Message type (the
// reply must be of its kind, else ErrUnexpectedKind). A member's refusal (a status other than 200) is a
// *RefusedError (errors.Is ErrRefused) with the status and the member's explanation.
func (c *Client) Send(ctx context.Context, memberURL string, kind Kind, body any, replyOut any) error {
	if c.Verifier == nil || c.Verifier.self != c.Name {
		return fmt.Errorf("federation: client %q needs a verifier for itself", c.Name)
	}
	m, ok := c.Verifier.fed.MemberByURL(memberURL)
	if !ok {
		return fmt.Errorf("federation: %s: %w", memberURL, ErrUnknownMember)
	}
	req, nonce, err := seal(c.Key, header{from: c.Name, to: m.Name, kind: kind}, body, c.Verifier.now(), rand.Reader)
	if err != nil {
		return err
	}
	data, err := c.post(ctx, m, req)
	if err != nil {
		return err
	}
	env, err := c.Verifier.openReply(data, m.Name, nonce)
	if err != nil {
		return fmt.Errorf("federation: %s reply from %s: %w", kind, m.Name, err)
	}
	if d, ok := env.Message.(*Decline); ok {
		return &DeclinedError{Member: m.Name, Decline: *d}
	}
	switch out := replyOut.(type) {
	case nil:
		return nil
	case *Envelope:
		*out = *env
		return nil
	case Message:
		if out.Kind() != env.Kind {
			return fmt.Errorf("federation: %s reply from %s: %s, want %s: %w", kind, m.Name, env.Kind, out.Kind(), ErrUnexpectedKind)
		}
	}
	if err := json.Unmarshal(env.Body, replyOut); err != nil {
		return fmt.Errorf("federation: %s reply from %s: %w", kind, m.Name, err)
	}
	return nil
}

// post sends one sealed request and returns the body of a 200 answer.
func (c *Client) post(ctx context.Context, m Member, req []byte) ([]byte, error) {
	hc := c.HTTP
	if hc == nil {
		hc = NewHTTPClient(0)
	}
	hr, err := http.NewRequestWithContext(WithPrivate(ctx, m.AllowPrivate), http.MethodPost, m.URL+Path, bytes.NewReader(req))
	if err != nil {
		return nil, fmt.Errorf("federation: %s: %w", m.Name, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("federation: %s: %w", m.Name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxEnvelopeSize+1))
	if err != nil {
		return nil, fmt.Errorf("federation: %s: reading reply: %w", m.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.ToValidUTF8(strings.TrimSpace(string(data)), "\uFFFD")
		if len(msg) > MaxTextLen {
			msg = msg[:MaxTextLen] + "…"
		}
		return nil, &RefusedError{Member: m.Name, Status: resp.StatusCode, Message: msg}
	}
	if len(data) > MaxEnvelopeSize {
		return nil, fmt.Errorf("federation: %s: reply larger than %d bytes: %w", m.Name, MaxEnvelopeSize, ErrTooLarge)
	}
	return data, nil
}
