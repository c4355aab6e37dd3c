package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/gateway/catalog"
	"github.com/swarmgate/swarmgate/internal/testlog"
	"github.com/swarmgate/swarmgate/steer"
)

// txtRecorder is a steer.Publisher that only records TXT values.
type txtRecorder struct {
	mu  sync.Mutex
	txt map[string][]string
}

func (r *txtRecorder) Set(context.Context, string, []steer.Weighted) error   { return nil }
func (r *txtRecorder) Withdraw(context.Context, string, ...netip.Addr) error { return nil }
func (r *txtRecorder) TTL() time.Duration                                    { return time.Second }
func (r *txtRecorder) values(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(slices.Values(r.txt[name]))
}
func (r *txtRecorder) AddTXT(_ context.Context, name, value string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.txt[name], value) {
		r.txt[name] = append(r.txt[name], value)
	}
	return nil
}
func (r *txtRecorder) RemoveTXT(_ context.Context, name, value string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.txt[name] = slices.DeleteFunc(r.txt[name], func(v string) bool { return v == value })
	return nil
}

// value makes the i-th well-formed DNS-01 value.
func value(i int) string { return string(rune('A'+i)) + "oqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0" }

// TestChallengeRecordLifetime: a recruited helper's challenge records go when it asks, when they time out,
// when it is released and when it declines; bounds and ownership hold.
func TestChallengeRecordLifetime(t *testing.T) {
	const site = "launch.example.test"
	name := acmeChallengeName(site)
	rec := &txtRecorder{txt: map[string][]string{}}
	c := &coordinator{site: site, cfg: FederationConfig{ChallengeTimeout: time.Minute}, dns: rec, log: testlog.New(t, slog.LevelInfo),
		client:  &federation.Client{}, // releases fail to send: no verifier; the records go all the same
		helpers: map[string]*helperState{}, challenges: map[string]*challengeRecord{}}
	for _, m := range []string{"beta", "gamma"} {
		c.helpers[m] = &helperState{member: federation.Member{Name: m, URL: "http://127.0.0.1:1"}, state: helperAccepted,
			version: &catalog.Version{}}
	}
	ctx := context.Background()
	publish := func(from string, i int) error {
		return c.challenge(ctx, from, &federation.Challenge{Site: site, Value: value(i)})
	}
	remove := func(from string, i int) error {
		return c.challenge(ctx, from, &federation.Challenge{Site: site, Value: value(i), Remove: true})
	}
	check := func(step string, want ...string) {
		t.Helper()
		slices.Sort(want)
		if got := rec.values(name); !slices.Equal(got, want) {
			t.Fatalf("%s: TXT %v, want %v", step, got, want)
		}
	}

	if err := publish("beta", 0); err != nil {
		t.Fatal(err)
	}
	if err := publish("gamma", 1); err != nil {
		t.Fatal(err)
	}
	check("two helpers", value(0), value(1))
	if err := remove("gamma", 0); err != nil { // not gamma's: ignored
		t.Fatal(err)
	}
	if err := publish("gamma", 0); !errors.Is(err, federation.ErrForbidden) {
		t.Errorf("gamma publishing beta's value: %v", err)
	}
	if err := remove("beta", 0); err != nil {
		t.Fatal(err)
	}
	check("beta's removed on request", value(1))

	// At most maxChallengesPerHelper at once per helper.
	for i := 2; i < 2+maxChallengesPerHelper; i++ {
		if err := publish("beta", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := publish("beta", 9); !errors.Is(err, ErrTooManyChallenges) {
		t.Errorf("challenge %d: %v, want %v", maxChallengesPerHelper+1, err, ErrTooManyChallenges)
	}

	// Timeout: only the expired records go.
	c.mu.Lock()
	c.challenges[value(2)].expires = time.Now().Add(-time.Second)
	c.mu.Unlock()
	c.expireChallenges(ctx, time.Now())
	check("one expired", value(1), value(3), value(4), value(5))

	// Gamma declines: its record goes. Beta is released: its records go, and it may publish no more.
	c.declined("gamma", &federation.Decline{InfoHash: c.helpers["gamma"].version.InfoHash.HexString(), Reason: "in a crowd myself"})
	check("gamma declined", value(3), value(4), value(5))
	c.release(ctx)
	check("beta released")
	if err := publish("beta", 6); !errors.Is(err, ErrNotAsked) || !errors.Is(err, federation.ErrForbidden) {
		t.Errorf("challenge after release: %v", err)
	}
	check("nothing after release")
}
