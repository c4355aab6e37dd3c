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
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testlog"
)

// testNode is one member of a loopback federation: its own server, key, verifier, client and logs.
type testNode struct {
	name   string
	key    ed25519.PrivateKey
	url    string
	srv    *httptest.Server
	v      *Verifier
	client *Client
	logs   *testlog.Buffer
	offset atomic.Int64 // added to the real clock, for this member only

	calls    atomic.Int32                     // how often the handler's fn ran
	reply    atomic.Pointer[HandlerFunc]      // fn's behaviour; nil: Accept a HelpRequest, Ack anything else
	override atomic.Pointer[http.HandlerFunc] // replaces the whole endpoint, to impersonate a member

	mu   sync.Mutex
	seen []*Envelope // what fn was given
}

func (n *testNode) now() time.Time { return time.Now().Add(time.Duration(n.offset.Load())) }

func (n *testNode) handle(ctx context.Context, env *Envelope) (Message, error) {
	n.calls.Add(1)
	n.mu.Lock()
	n.seen = append(n.seen, env)
	n.mu.Unlock()
	if fn := n.reply.Load(); fn != nil {
		return (*fn)(ctx, env)
	}
	if r, ok := env.Message.(*HelpRequest); ok {
		return &Accept{InfoHash: r.InfoHash, Capacity: 100}, nil
	}
	return nil, nil
}

// envelopes returns what fn was given so far.
func (n *testNode) envelopes() []*Envelope {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Envelope(nil), n.seen...)
}

func (n *testNode) setReply(fn HandlerFunc) { n.reply.Store(&fn) }

func (n *testNode) setOverride(fn http.HandlerFunc) { n.override.Store(&fn) }

// newTestNet starts alpha, beta and gamma on loopback, port 0, each with its own verifier, clock and logger.
func newTestNet(t *testing.T) map[string]*testNode {
	t.Helper()
	nodes := map[string]*testNode{}
	var members []map[string]any
	for _, name := range []string{"alpha", "beta", "gamma"} {
		n := &testNode{name: name, key: testKey(name)}
		// The listener exists before the server starts, so the federation file can list its URL.
		n.srv = httptest.NewUnstartedServer(nil)
		n.url = "http://" + n.srv.Listener.Addr().String()
		members = append(members, memberJSON(name, n.url, "127.0.0.1"))
		nodes[name] = n
	}
	fed, err := ParseFederation(federationJSON(t, members...))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		var log *slog.Logger
		log, n.logs = testLogger(t)
		n.v = newTestVerifier(t, fed, n.name, n.now)
		endpoint := Handler(n.v, n.key, log, n.handle)
		mux := http.NewServeMux()
		mux.Handle(Path, endpoint)
		n.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if o := n.override.Load(); o != nil {
				(*o)(w, r)
				return
			}
			mux.ServeHTTP(w, r)
		})
		tr := &http.Transport{}
		n.client = &Client{Key: n.key, Name: n.name, Verifier: n.v, HTTP: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
		n.srv.Start()
		t.Cleanup(func() {
			n.srv.Close()
			tr.CloseIdleConnections()
		})
	}
	return nodes
}

// post sends raw bytes to a member's endpoint and returns the status and body.
func post(t *testing.T, n *testNode, method string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, n.url+Path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := n.client.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sealNow seals with a member's real key at that member's clock plus age.
func sealNow(t *testing.T, n *testNode, to string, kind Kind, re string, body any, age time.Duration) []byte {
	t.Helper()
	data, _, err := seal(n.key, header{from: n.name, to: to, kind: kind, re: re}, body, n.now().Add(age), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestRoundTrip(t *testing.T) {
	checkGoroutines(t)
	net := newTestNet(t)
	alpha, beta, gamma := net["alpha"], net["beta"], net["gamma"]
	ctx := t.Context()

	req := testHelpRequest()
	var acc Accept
	if err := alpha.client.Send(ctx, beta.url, KindHelpRequest, req, &acc); err != nil {
		t.Fatal(err)
	}
	if acc.InfoHash != req.InfoHash || acc.Capacity != 100 {
		t.Errorf("accept %+v", acc)
	}
	if beta.calls.Load() != 1 {
		t.Fatalf("beta handled %d messages, want 1", beta.calls.Load())
	}
	got := beta.envelopes()[0]
	if got.From != "alpha" || got.To != "beta" || got.Kind != KindHelpRequest || got.Message.(*HelpRequest).Origin != req.Origin {
		t.Errorf("beta got %+v", got)
	}

	// A helper reports ready to the gateway; nil reply is an Ack.
	ready := &Ready{Site: req.Site, InfoHash: req.InfoHash, Address: mustAddrPort(gamma.srv.Listener.Addr().String()),
		Proof: ProofOf([]byte(req.Challenge), []byte("piece data"))}
	var ack Ack
	if err := gamma.client.Send(ctx, alpha.url+"/", KindReady, ready, &ack); err != nil {
		t.Fatal(err)
	}
	if alpha.calls.Load() != 1 || alpha.envelopes()[0].Message.(*Ready).Address != ready.Address {
		t.Errorf("alpha got %+v", alpha.envelopes())
	}

	// The whole reply envelope, on request.
	var env Envelope
	if err := alpha.client.Send(ctx, beta.url, KindRelease, &Release{Site: req.Site, InfoHash: req.InfoHash}, &env); err != nil {
		t.Fatal(err)
	}
	if env.Kind != KindAck || env.From != "beta" || env.To != "alpha" || env.Re != beta.envelopes()[1].Nonce {
		t.Errorf("reply envelope %+v, request nonce %s", env, beta.envelopes()[1].Nonce)
	}

	// No reply wanted.
	if err := alpha.client.Send(ctx, gamma.url, KindRelease, &Release{Site: req.Site, InfoHash: req.InfoHash}, nil); err != nil {
		t.Fatal(err)
	}

	// A member in a crowd of its own declines.
	gamma.setReply(func(context.Context, *Envelope) (Message, error) {
		return &Decline{Site: req.Site, InfoHash: req.InfoHash, Reason: ReasonInCrowd}, nil
	})
	err := alpha.client.Send(ctx, gamma.url, KindHelpRequest, req, &acc)
	var declined *DeclinedError
	if !errors.Is(err, ErrDeclined) || !errors.As(err, &declined) || declined.Member != "gamma" || declined.Decline.Reason != ReasonInCrowd {
		t.Fatalf("Send to a member in a crowd = %v; want a DeclinedError", err)
	}

	// A reply of another kind than the caller expects.
	if err := alpha.client.Send(ctx, beta.url, KindRelease, &Release{Site: req.Site, InfoHash: req.InfoHash}, &acc); !errors.Is(err, ErrUnexpectedKind) {
		t.Fatalf("Ack decoded as Accept: %v; want ErrUnexpectedKind", err)
	}

	// Not a member's URL: nothing is sent.
	before := beta.calls.Load()
	if err := alpha.client.Send(ctx, beta.url+"/elsewhere", KindHelpRequest, req, nil); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("Send to an unknown URL = %v; want ErrUnknownMember", err)
	}
	// A body Seal refuses is not sent either.
	if err := alpha.client.Send(ctx, beta.url, KindHelpRequest, &HelpRequest{Site: "x"}, nil); !errors.Is(err, ErrBadBody) {
		t.Fatalf("Send of an invalid body = %v; want ErrBadBody", err)
	}
	if beta.calls.Load() != before {
		t.Error("a message that was never sent reached beta")
	}

	// The handler's own failures: an error that wraps a sentinel gets its status, any other is a 500.
	beta.setReply(func(context.Context, *Envelope) (Message, error) { return nil, errors.New("disk full") })
	err = alpha.client.Send(ctx, beta.url, KindHelpRequest, req, nil)
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Status != http.StatusInternalServerError || !strings.Contains(refused.Message, "disk full") {
		t.Fatalf("handler failure: %v; want a 500 RefusedError", err)
	}
	beta.setReply(func(context.Context, *Envelope) (Message, error) {
		return nil, fmt.Errorf("site %q is not in the manifest: %w", "x", ErrBadBody)
	})
	if err = alpha.client.Send(ctx, beta.url, KindHelpRequest, req, nil); !errors.As(err, &refused) || refused.Status != http.StatusBadRequest {
		t.Fatalf("handler refusal: %v; want a 400 RefusedError", err)
	}
	if !errors.Is(err, ErrRefused) {
		t.Errorf("%v does not match ErrRefused", err)
	}
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// TestRefusedChangesNothing posts messages that must be refused to beta's endpoint. Each is refused with its
// reason, answered with the right status, and logged; beta's handler never runs; and the genuine envelope the
// bad one was made from is accepted afterwards, so the refusal left no trace (not even a used-up nonce).
func TestRefusedChangesNothing(t *testing.T) {
	tests := []struct {
		name   string
		method string
		bad    func(t *testing.T, net map[string]*testNode, genuine []byte) io.Reader
		status int
		want   error
	}{
		{name: "forged signature: body changed", status: 401, want: ErrBadSignature,
			bad: func(t *testing.T, _ map[string]*testNode, g []byte) io.Reader {
				return bytes.NewReader(bytes.Replace(g, []byte(`"capacity":200`), []byte(`"capacity":900`), 1))
			}},
		{name: "forged signature: flipped bit", status: 401, want: ErrBadSignature,
			bad: func(t *testing.T, _ map[string]*testNode, g []byte) io.Reader {
				return bytes.NewReader(tamper(t, g, func(w *wireEnvelope) {
					sig, _ := b64.DecodeString(w.Sig)
					sig[0] ^= 0x80
					w.Sig = b64.EncodeToString(sig)
				}))
			}},
		{name: "unknown key", status: 401, want: ErrBadSignature,
			bad: func(t *testing.T, _ map[string]*testNode, g []byte) io.Reader {
				return bytes.NewReader(tamper(t, g, func(w *wireEnvelope) {
					w.Sig = b64.EncodeToString(ed25519.Sign(testKey("mallory"), signedBytes(w)))
				}))
			}},
		{name: "unknown sender", status: 401, want: ErrUnknownSender,
			bad: func(t *testing.T, _ map[string]*testNode, g []byte) io.Reader {
				return bytes.NewReader(tamper(t, g, func(w *wireEnvelope) {
					w.From = "mallory"
					w.Sig = b64.EncodeToString(ed25519.Sign(testKey("mallory"), signedBytes(w)))
				}))
			}},
		{name: "unsigned", status: 401, want: ErrUnsigned,
			bad: func(t *testing.T, _ map[string]*testNode, g []byte) io.Reader {
				return bytes.NewReader(tamper(t, g, func(w *wireEnvelope) { w.Sig = "" }))
			}},
		{name: "unsigned bare body", status: 400, want: ErrMalformed,
			bad: func(t *testing.T, _ map[string]*testNode, g []byte) io.Reader {
				return bytes.NewReader(mustJSON(testHelpRequest()))
			}},
		{name: "stale timestamp", status: 401, want: ErrStale,
			bad: func(t *testing.T, net map[string]*testNode, g []byte) io.Reader {
				return bytes.NewReader(sealNow(t, net["alpha"], "beta", KindHelpRequest, "", testHelpRequest(), -2*MaxSkew))
			}},
		{name: "timestamp from the future", status: 401, want: ErrStale,
			bad: func(t *testing.T, net map[string]*testNode, g []byte) io.Reader {
				return bytes.NewReader(sealNow(t, net["alpha"], "beta", KindHelpRequest, "", testHelpRequest(), 2*MaxSkew))
			}},
		{name: "addressed to gamma", status: 401, want: ErrWrongRecipient,
			bad: func(t *testing.T, net map[string]*testNode, g []byte) io.Reader {
				return bytes.NewReader(sealNow(t, net["alpha"], "gamma", KindHelpRequest, "", testHelpRequest(), 0))
			}},
		{name: "oversize body", status: 413, want: ErrTooLarge,
			bad: func(t *testing.T, _ map[string]*testNode, g []byte) io.Reader {
				return bytes.NewReader(append(bytes.Clone(g), bytes.Repeat([]byte(" "), MaxEnvelopeSize)...))
			}},
		{name: "oversize body, chunked", status: 413, want: ErrTooLarge,
			bad: func(t *testing.T, _ map[string]*testNode, g []byte) io.Reader {
				return io.MultiReader(bytes.NewReader(g), io.LimitReader(zeros{}, 10*MaxEnvelopeSize))
			}},
		{name: "reply posted as a request", status: 400, want: ErrNotARequest,
			bad: func(t *testing.T, net map[string]*testNode, g []byte) io.Reader {
				return bytes.NewReader(sealNow(t, net["alpha"], "beta", KindAck, "AAAAAAAAAAAAAAAAAAAAAA", &Ack{}, 0))
			}},
		{name: "unknown kind", status: 400, want: ErrUnknownKind,
			bad: func(t *testing.T, _ map[string]*testNode, g []byte) io.Reader {
				return bytes.NewReader(tamper(t, g, func(w *wireEnvelope) {
					w.Kind = "shutdown"
					w.Sig = b64.EncodeToString(ed25519.Sign(testKey("alpha"), signedBytes(w)))
				}))
			}},
		{name: "invalid body", status: 400, want: ErrBadBody,
			bad: func(t *testing.T, _ map[string]*testNode, g []byte) io.Reader {
				return bytes.NewReader(tamper(t, g, func(w *wireEnvelope) {
					w.Body = json.RawMessage(bytes.Replace(w.Body, []byte(testInfoHash), []byte("not-an-infohash"), 1))
					w.Sig = b64.EncodeToString(ed25519.Sign(testKey("alpha"), signedBytes(w)))
				}))
			}},
		{name: "GET", method: http.MethodGet, status: 405, want: ErrMethod,
			bad: func(t *testing.T, _ map[string]*testNode, g []byte) io.Reader { return nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			net := newTestNet(t)
			alpha, beta := net["alpha"], net["beta"]
			genuine := sealNow(t, alpha, "beta", KindHelpRequest, "", testHelpRequest(), 0)
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			status, text := post(t, beta, method, tc.bad(t, net, genuine))
			if status != tc.status || !strings.Contains(text, tc.want.Error()) {
				t.Errorf("answered %d %q; want %d with %q", status, text, tc.status, tc.want)
			}
			if n := beta.calls.Load(); n != 0 {
				t.Fatalf("beta's handler ran %d times for a refused message", n)
			}
			if logs := beta.logs.String(); !strings.Contains(logs, "message refused") || !strings.Contains(logs, tc.want.Error()) {
				t.Errorf("refusal not logged with its reason:\n%s", logs)
			}
			if status, text := post(t, beta, http.MethodPost, bytes.NewReader(genuine)); status != http.StatusOK {
				t.Fatalf("genuine message after the refusal: %d %s", status, text)
			}
			if n := beta.calls.Load(); n != 1 {
				t.Fatalf("beta's handler ran %d times, want once for the genuine message", n)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestReplayRefused(t *testing.T) {
	checkGoroutines(t)
	net := newTestNet(t)
	alpha, beta, gamma := net["alpha"], net["beta"], net["gamma"]
	genuine := sealNow(t, alpha, "beta", KindHelpRequest, "", testHelpRequest(), 0)
	if status, text := post(t, beta, http.MethodPost, bytes.NewReader(genuine)); status != http.StatusOK {
		t.Fatalf("first delivery: %d %s", status, text)
	}
	for range 2 {
		status, text := post(t, beta, http.MethodPost, bytes.NewReader(genuine))
		if status != http.StatusUnauthorized || !strings.Contains(text, ErrReplay.Error()) {
			t.Errorf("byte-identical resend: %d %q; want 401 %q", status, text, ErrReplay)
		}
	}
	if n := beta.calls.Load(); n != 1 {
		t.Fatalf("beta's handler ran %d times, want once", n)
	}
	// Nor does it work on another member, which has never seen the nonce.
	if status, text := post(t, gamma, http.MethodPost, bytes.NewReader(genuine)); status != http.StatusUnauthorized ||
		!strings.Contains(text, ErrWrongRecipient.Error()) {
		t.Errorf("replay to gamma: %d %q", status, text)
	}
	if n := gamma.calls.Load(); n != 0 {
		t.Fatalf("gamma's handler ran %d times", n)
	}
}

// TestClientChecksReply has a server at beta's URL answer alpha with replies that must not be believed.
func TestClientChecksReply(t *testing.T) {
	checkGoroutines(t)
	net := newTestNet(t)
	alpha, beta, gamma := net["alpha"], net["beta"], net["gamma"]
	ctx := t.Context()
	req := testHelpRequest()

	// A genuine reply from beta, kept for replaying.
	var captured []byte
	beta.setOverride(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		Handler(beta.v, beta.key, nil, beta.handle).ServeHTTP(rec, r)
		captured = rec.Body.Bytes()
		w.Write(captured)
	})
	if err := alpha.client.Send(ctx, beta.url, KindHelpRequest, req, nil); err != nil {
		t.Fatal(err)
	}

	// answer makes the impostor at beta's URL answer each request with what reply returns.
	answer := func(reply func(reqEnv *wireEnvelope) []byte) {
		beta.setOverride(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			var we wireEnvelope
			json.Unmarshal(b, &we)
			w.Write(reply(&we))
		})
	}
	acc := &Accept{InfoHash: testInfoHash, Capacity: 10}
	sealReply := func(key ed25519.PrivateKey, from, to, re string, age time.Duration) []byte {
		data, _, err := seal(key, header{from: from, to: to, kind: KindAccept, re: re}, acc, alpha.now().Add(age), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	tests := []struct {
		name  string
		reply func(req *wireEnvelope) []byte
		want  error
	}{
		{"replayed reply", func(*wireEnvelope) []byte { return captured }, ErrReplay},
		{"signed by an unknown key", func(r *wireEnvelope) []byte {
			return sealReply(testKey("mallory"), "beta", "alpha", r.Nonce, 0)
		}, ErrBadSignature},
		{"signed by another member", func(r *wireEnvelope) []byte {
			return sealReply(gamma.key, "gamma", "alpha", r.Nonce, 0)
		}, ErrNotInReplyTo},
		{"answering another request", func(r *wireEnvelope) []byte {
			return sealReply(beta.key, "beta", "alpha", "AAAAAAAAAAAAAAAAAAAAAA", 0)
		}, ErrNotInReplyTo},
		{"not a reply", func(r *wireEnvelope) []byte {
			return sealReply(beta.key, "beta", "alpha", "", 0)
		}, ErrNotInReplyTo},
		{"addressed to another", func(r *wireEnvelope) []byte {
			return sealReply(beta.key, "beta", "gamma", r.Nonce, 0)
		}, ErrWrongRecipient},
		{"stale", func(r *wireEnvelope) []byte {
			return sealReply(beta.key, "beta", "alpha", r.Nonce, -2*MaxSkew)
		}, ErrStale},
		{"unsigned", func(r *wireEnvelope) []byte {
			return tamper(t, sealReply(beta.key, "beta", "alpha", r.Nonce, 0), func(w *wireEnvelope) { w.Sig = "" })
		}, ErrUnsigned},
		{"not an envelope", func(r *wireEnvelope) []byte { return []byte(`{"infohash":"` + testInfoHash + `","capacity":10}`) }, ErrMalformed},
		{"oversize", func(r *wireEnvelope) []byte { return bytes.Repeat([]byte(" "), MaxEnvelopeSize+1) }, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			answer(tc.reply)
			var out Accept
			err := alpha.client.Send(ctx, beta.url, KindHelpRequest, req, &out)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Send = %v; want %v", err, tc.want)
			}
			if out != (Accept{}) {
				t.Errorf("an untrusted reply was decoded: %+v", out)
			}
		})
	}

	// A client whose clock is off is refused by the member, and told why.
	beta.override.Store(nil)
	alpha.offset.Store(int64(-3 * MaxSkew))
	err := alpha.client.Send(ctx, beta.url, KindHelpRequest, req, nil)
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Status != http.StatusUnauthorized || !strings.Contains(refused.Message, ErrStale.Error()) {
		t.Fatalf("Send with a slow clock = %v; want a 401 RefusedError naming the timestamp", err)
	}

	// A client whose name is not its verifier's is a configuration error, caught before sending.
	c := *alpha.client
	c.Name = "gamma"
	if err := c.Send(ctx, beta.url, KindAck, &Ack{}, nil); err == nil {
		t.Error("client with a mismatched name sent")
	}
}
