package federation

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testlog"
)

// fixedNow is the clock of the deterministic fixture: envelopes sealed at it open with a Verifier whose
// clock reads it, so the committed fuzz corpus stays valid.
var fixedNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// testKey returns a deterministic key for name.
func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("swarmgate federation test key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// testRand returns a deterministic source of nonces for label.
func testRand(label string) io.Reader {
	return rand.NewChaCha8(sha256.Sum256([]byte("swarmgate federation test nonce " + label)))
}

// memberJSON is one member of a federation file, for tests that build one. The tests run on loopback, so
// every member says allowPrivate; a member's site is "<name>.example.test".
func memberJSON(name, url string, addrs ...string) map[string]any {
	if addrs == nil {
		addrs = []string{}
	}
	return map[string]any{"name": name, "url": url, "key": FormatPublicKey(testKey(name).Public().(ed25519.PublicKey)),
		"addresses": addrs, "sites": []string{name + ".example.test"}, "allowPrivate": true}
}

func federationJSON(t testing.TB, members ...map[string]any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(map[string]any{"members": members}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testFederation is alpha (a gateway), beta and gamma (helpers) on the three loopback hosts.
func testFederation(t testing.TB) *Federation {
	t.Helper()
	fed, err := ParseFederation(federationJSON(t,
		memberJSON("alpha", "http://127.0.0.1:8080", "127.0.0.1"),
		memberJSON("beta", "http://127.0.0.2:8080", "127.0.0.2"),
		memberJSON("gamma", "http://127.0.0.3:8080", "127.0.0.3")))
	if err != nil {
		t.Fatal(err)
	}
	return fed
}

// fixedClock returns a clock reading fixedNow + *offset, so a test can move it.
func fixedClock(offset *time.Duration) func() time.Time {
	var mu sync.Mutex
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return fixedNow.Add(*offset)
	}
}

func newTestVerifier(t testing.TB, fed *Federation, self string, now func() time.Time) *Verifier {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	// As if the server had started two windows ago, so that every envelope within the skew opens.
	v, err := NewVerifier(VerifierConfig{Federation: fed, Self: self, Now: now, NotBefore: now().Add(-2 * MaxSkew)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sealAt seals deterministically: at fixedNow+age, with nonces drawn from label.
func sealAt(t testing.TB, from, to string, kind Kind, re string, body any, age time.Duration, label string) []byte {
	t.Helper()
	data, _, err := seal(testKey(from), header{from: from, to: to, kind: kind, re: re}, body, fixedNow.Add(age), testRand(label))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// forge builds an envelope outside Seal's checks: w is signed with key (unless sign is false) and then changed
// by after, so tests can make envelopes Seal would refuse to make.
func forge(t testing.TB, key ed25519.PrivateKey, w wireEnvelope, sign bool, after func(*wireEnvelope)) []byte {
	t.Helper()
	if w.V == 0 {
		w.V = Version
	}
	if w.TS == 0 {
		w.TS = fixedNow.UnixMilli()
	}
	if w.Nonce == "" {
		n := make([]byte, nonceSize)
		io.ReadFull(testRand(string(w.Kind)+string(w.Body)), n)
		w.Nonce = b64.EncodeToString(n)
	}
	if sign {
		w.Sig = b64.EncodeToString(ed25519.Sign(key, signedBytes(&w)))
	}
	if after != nil {
		after(&w)
	}
	b, err := json.Marshal(&w)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tamper decodes an envelope, changes it with fn, and encodes it again, keeping its signature.
func tamper(t testing.TB, data []byte, fn func(*wireEnvelope)) []byte {
	t.Helper()
	var w wireEnvelope
	if err := json.Unmarshal(data, &w); err != nil {
		t.Fatal(err)
	}
	fn(&w)
	b, err := json.Marshal(&w)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const testInfoHash = "0123456789abcdef0123456789abcdef01234567"

func testHelpRequest() *HelpRequest {
	return &HelpRequest{
		Site: "www.example.org", Version: "v1-3f2a", InfoHash: testInfoHash,
		Origin:   "http://127.0.0.1:9000",
		Webseeds: []string{"http://127.0.0.1:8080/.swarm/webseed/"},
		Tracker:  "ws://127.0.0.1:8080/.swarm/announce", Capacity: 200,
		Until:     fixedNow.Add(10 * time.Minute),
		Challenge: "00112233445566778899aabbccddeeff",
	}
}

func testLogger(t testing.TB) (*slog.Logger, *testlog.Buffer) {
	lb := &testlog.Buffer{}
	w := io.MultiWriter(lb, testlog.Writer(t))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// checkGoroutines fails the test if, once its other cleanups have run, more goroutines are left than when it
// started. Call it first, so its cleanup runs last.
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines leaked:\n%s", runtime.NumGoroutine()-before, buf)
				return
			}
			time.Sleep(10 * time.Millisecond) // polling a condition with a deadline, not sleeping for correctness
		}
	})
}
