package federation

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var updateCorpus = flag.Bool("update-corpus", false,
	"rewrite testdata/fuzz/FuzzOpen from openCases and bodyCases, and FuzzParseFederation from federationFileCases")

// bodyCases seed the fuzzer with message bodies, which FuzzOpen also seals as each kind.
var bodyCases = map[string]string{
	"body-help-request": string(mustJSON(testHelpRequest())),
	"body-ready":        `{"site":"www.example.org","infohash":"` + testInfoHash + `","address":"127.0.0.2:8080","proof":"` + ProofOf(nil, nil) + `"}`,
	"body-decline":      `{"reason":"in a crowd myself"}`,
	"body-release":      `{"site":"www.example.org","infohash":"` + testInfoHash + `"}`,
	"body-empty":        `{}`,
	"body-challenge":    `{"site":"www.example.org","value":"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0","remove":true}`,
	"body-ready-tls":    `{"site":"www.example.org","infohash":"` + testInfoHash + `","address":"127.0.0.2:8080","tls_address":"127.0.0.2:8443","proof":"` + ProofOf(nil, nil) + `"}`,
}

// sentinels are the errors Open may wrap; every refusal must wrap one, so that the HTTP layer can map it.
var sentinels = []error{ErrTooLarge, ErrMalformed, ErrUnsupportedVersion, ErrUnknownSender, ErrWrongRecipient,
	ErrUnsigned, ErrBadSignature, ErrStale, ErrUnknownKind, ErrBadBody, ErrReplay, ErrReplayCacheFull}

var allKinds = []Kind{KindHelpRequest, KindAccept, KindReady, KindDecline, KindRelease, KindChallenge, KindAck}

// FuzzOpen checks that no input panics Open; that every refusal wraps a sentinel that maps to a 4xx status;
// that whatever opens is from a member, to beta, with a valid body, opens only once, and survives being
// sealed again; and that whatever Seal accepts as a body, of any kind, opens to the same body.
func FuzzOpen(f *testing.F) {
	fed := testFederation(f)
	now := func() time.Time { return fixedNow }
	for _, tc := range openCases {
		if !tc.noCorpus {
			f.Add(tc.data(f))
		}
	}
	for _, b := range bodyCases {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := newTestVerifier(t, fed, "beta", now)
		env, err := v.Open(data)
		if err != nil {
			checkRefusal(t, err)
		} else {
			if _, ok := fed.Member(env.From); !ok || env.To != "beta" || env.Message.Kind() != env.Kind {
				t.Fatalf("opened %+v", env)
			}
			if err := env.Message.Validate(); err != nil {
				t.Fatalf("opened an invalid body: %v", err)
			}
			if _, err := v.Open(data); !errors.Is(err, ErrReplay) {
				t.Fatalf("opened twice: %v", err)
			}
			again, _, err := seal(testKey(env.From), header{from: env.From, to: "beta", kind: env.Kind, re: env.Re},
				env.Message, fixedNow, testRand("reseal"))
			if err != nil {
				t.Fatalf("re-sealing an opened message: %v", err)
			}
			env2, err := v.Open(again)
			if err != nil {
				t.Fatalf("re-sealed message does not open: %v\n%s", err, again)
			}
			if a, b := mustJSON(env.Message), mustJSON(env2.Message); !bytes.Equal(a, b) {
				t.Fatalf("re-sealing changed the message:\n%s\n%s", a, b)
			}
		}
		// A sealed message always opens, whatever the body.
		for _, kind := range allKinds {
			sealed, _, err := seal(testKey("alpha"), header{from: "alpha", to: "beta", kind: kind}, json.RawMessage(data),
				fixedNow, testRand("body"))
			if err != nil {
				continue
			}
			env, err := newTestVerifier(t, fed, "beta", now).Open(sealed)
			if err != nil {
				t.Fatalf("sealed %s does not open: %v\n%s", kind, err, sealed)
			}
			// The body is signed and sent as json.Marshal writes it: compact, with HTML characters escaped.
			var compact, want bytes.Buffer
			if err := json.Compact(&compact, data); err != nil {
				t.Fatalf("Seal accepted invalid JSON %q", data)
			}
			json.HTMLEscape(&want, compact.Bytes())
			if !bytes.Equal(env.Body, want.Bytes()) {
				t.Fatalf("body changed: sealed %q, opened %q", data, env.Body)
			}
		}
	})
}

func checkRefusal(t *testing.T, err error) {
	t.Helper()
	for _, s := range sentinels {
		if errors.Is(err, s) {
			if code := statusOf(err); code < 400 || code >= 500 {
				t.Fatalf("refusal %v maps to status %d", err, code)
			}
			return
		}
	}
	t.Fatalf("refusal wraps no sentinel: %v", err)
}

// TestFuzzCorpus checks that the committed corpus holds every seed of FuzzOpen, so that `go test` runs them all
// even where the seeds' code changes; -update-corpus rewrites it.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	seeds := map[string][]byte{}
	for _, tc := range openCases {
		if !tc.noCorpus {
			seeds[tc.name] = tc.data(t)
		}
	}
	for name, b := range bodyCases {
		seeds[name] = []byte(b)
	}
	for name, data := range seeds {
		file := filepath.Join(dir, name)
		want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(file)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is missing or stale (%v): go test -run TestFuzzCorpus -update-corpus ./federation/", file, err)
		}
	}
}

// federationFileCases seed FuzzParseFederation: files that parse, with every field, and near misses.
var federationFileCases = map[string]string{
	"file-minimal": `{"members":[{"name":"alpha","url":"http://a.example","key":"` + testPub("alpha") + `"}]}`,
	"file-full": `{"members":[{"name":"alpha","url":"https://alpha.example.org/sg/","key":"` + testPub("alpha") +
		`","addresses":["192.0.2.10","2001:db8::10"],"sites":["www.example.com","Example.com."]},` +
		`{"name":"lab","url":"http://127.0.0.2:8080","key":"` + testPub("beta") + `","addresses":["127.0.0.2"],"allowPrivate":true}]}`,
	"file-site-ip":        `{"members":[{"name":"alpha","url":"http://a.example","key":"` + testPub("alpha") + `","sites":["127.0.0.1"]}]}`,
	"file-site-twice":     `{"members":[{"name":"a","url":"http://a.example","key":"` + testPub("alpha") + `","sites":["x.test"]},{"name":"b","url":"http://b.example","key":"` + testPub("beta") + `","sites":["X.test"]}]}`,
	"file-site-wildcard":  `{"members":[{"name":"alpha","url":"http://a.example","key":"` + testPub("alpha") + `","sites":["*.example.com"]}]}`,
	"file-private-string": `{"members":[{"name":"alpha","url":"http://a.example","key":"` + testPub("alpha") + `","allowPrivate":"true"}]}`,
}

func testPub(name string) string { return FormatPublicKey(testKey(name).Public().(ed25519.PublicKey)) }

// fileSentinels are the errors ParseFederation may wrap; every refusal must wrap one.
var fileSentinels = []error{ErrFederationFile, ErrNoMembers, ErrBadName, ErrDuplicateName, ErrBadURL, ErrDuplicateURL,
	ErrBadPublicKey, ErrDuplicateKey, ErrBadAddress, ErrDuplicateAddress, ErrBadSite, ErrDuplicateSite}

// FuzzParseFederation checks that no input panics ParseFederation; that every refusal wraps a sentinel and
// names the component; and that what parses is normalised (sites lower-case, valid, each with one owner)
// and survives being written out as a federation file and parsed again unchanged.
func FuzzParseFederation(f *testing.F) {
	for _, c := range federationFileCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fed, err := ParseFederation(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "federation: ") {
				t.Fatalf("error without the component: %v", err)
			}
			for _, s := range fileSentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("refusal wraps no sentinel: %v", err)
		}
		var file fileFederation
		for _, m := range fed.Members() {
			for _, s := range m.Sites {
				if n, err := parseSite(s); err != nil || n != s {
					t.Fatalf("member %s: site %q not normalised (%q, %v)", m.Name, s, n, err)
				}
				if o, ok := fed.SiteOwner(s); !ok || o.Name != m.Name {
					t.Fatalf("site %q: owner %q, want %q", s, o.Name, m.Name)
				}
			}
			fm := fileMember{Name: m.Name, URL: m.URL, Key: FormatPublicKey(m.Key), Sites: m.Sites, AllowPrivate: m.AllowPrivate}
			for _, a := range m.Addresses {
				fm.Addresses = append(fm.Addresses, a.String())
			}
			file.Members = append(file.Members, fm)
		}
		again, err := ParseFederation(mustJSON(file))
		if err != nil {
			t.Fatalf("written out, the file does not parse: %v\n%s", err, mustJSON(file))
		}
		if a, b := mustJSON(fed.Members()), mustJSON(again.Members()); !bytes.Equal(a, b) {
			t.Fatalf("round trip changed the members:\n%s\n%s", a, b)
		}
	})
}

// TestFederationFuzzCorpus checks that the committed corpus holds every seed of FuzzParseFederation;
// -update-corpus rewrites it.
func TestFederationFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParseFederation")
	for name, data := range federationFileCases {
		file := filepath.Join(dir, name)
		want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(file)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is missing or stale (%v): go test -run TestFederationFuzzCorpus -update-corpus ./federation/", file, err)
		}
	}
}
