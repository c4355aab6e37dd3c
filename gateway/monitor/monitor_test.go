package monitor

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// clock is a fake clock for driving the state machine.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type harness struct {
	t   *testing.T
	c   *clock
	m   *Monitor
	log []string
}

func newHarness(t *testing.T, cfg Config) *harness {
	h := &harness{t: t, c: &clock{time.Unix(1_700_000_000, 0)}}
	cfg.Now = h.c.now
	cfg.OnChange = func(from, to State) { h.log = append(h.log, from.String()+"->"+to.String()) }
	h.m = New(cfg)
	return h
}

// run advances the clock by d in steps of the tick interval, sending rate requests per second spread over
// 1000 clients (so that no client's share binds).
func (h *harness) run(d time.Duration, rate float64) {
	h.runFrom(d, rate, manyClients)
}

var manyClients = func() []netip.Addr {
	var out []netip.Addr
	for i := range 1000 {
		out = append(out, netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	return out
}()

// runFrom is run with the requests sent by the given clients in turn.
func (h *harness) runFrom(d time.Duration, rate float64, clients []netip.Addr) {
	step := h.m.TickInterval()
	perStep := rate * step.Seconds()
	carry := 0.0
	next := 0
	for elapsed := time.Duration(0); elapsed < d; elapsed += step {
		h.c.t = h.c.t.Add(step)
		carry += perStep
		for ; carry >= 1; carry-- {
			h.m.Demand(clients[next%len(clients)])
			next++
		}
		h.m.Tick()
	}
}

func (h *harness) want(s State) {
	h.t.Helper()
	if got := h.m.Status().State; got != s {
		h.t.Fatalf("state %s, want %s (transitions %v)", got, s, h.log)
	}
}

func TestCrowdLifecycle(t *testing.T) {
	h := newHarness(t, Config{Window: 2 * time.Second, Threshold: 100, EnterAfter: 3 * time.Second,
		ExitAfter: 5 * time.Second, EndingHold: 4 * time.Second})
	h.run(10*time.Second, 50)
	h.want(Normal)
	h.run(3*time.Second, 500) // the window fills, then the rate must hold for EnterAfter
	h.want(Normal)
	h.run(3*time.Second, 500)
	h.want(Crowd)
	h.run(4*time.Second, 20) // calm, but not for long enough
	h.want(Crowd)
	h.run(3*time.Second, 20)
	h.want(Ending)
	h.run(3*time.Second, 20)
	h.want(Ending) // the records' TTL has not passed
	h.run(2*time.Second, 20)
	h.want(Normal)
	if got := h.log; len(got) != 3 || got[0] != "normal->crowd" || got[1] != "crowd->ending" || got[2] != "ending->normal" {
		t.Fatalf("transitions %v", got)
	}
	if tr := h.m.Status().Transitions; tr["normal->crowd"] != 1 || tr["ending->normal"] != 1 {
		t.Fatalf("counted transitions %v", tr)
	}
}

func TestNoFlappingAroundTheThreshold(t *testing.T) {
	h := newHarness(t, Config{Window: 2 * time.Second, Threshold: 100, EnterAfter: 3 * time.Second,
		ExitAfter: 5 * time.Second, EndingHold: 4 * time.Second})
	// Bursts shorter than EnterAfter never start a crowd.
	for range 5 {
		h.run(2*time.Second, 300)
		h.run(2*time.Second, 10)
	}
	h.want(Normal)
	h.run(6*time.Second, 300)
	h.want(Crowd)
	// Hovering just under the threshold (above ExitFraction of it) keeps the crowd: no crowd->ending->crowd.
	h.run(20*time.Second, 90)
	h.want(Crowd)
	if len(h.log) != 1 {
		t.Fatalf("flapped: %v", h.log)
	}
}

func TestSurgeDuringEndingReturnsToCrowd(t *testing.T) {
	h := newHarness(t, Config{Window: 2 * time.Second, Threshold: 100, EnterAfter: 2 * time.Second,
		ExitAfter: 2 * time.Second, EndingHold: 30 * time.Second})
	h.run(5*time.Second, 300)
	h.run(5*time.Second, 0)
	h.want(Ending)
	h.run(5*time.Second, 300)
	h.want(Crowd)
	if h.log[len(h.log)-1] != "ending->crowd" {
		t.Fatalf("transitions %v", h.log)
	}
}

func TestOriginLatencyAndErrorsCountAsOverload(t *testing.T) {
	h := newHarness(t, Config{Window: 2 * time.Second, Threshold: 1000, LatencyThreshold: 500 * time.Millisecond,
		ErrorRatio: 0.5, EnterAfter: time.Second})
	for range 30 {
		h.c.t = h.c.t.Add(100 * time.Millisecond)
		h.m.Demand(manyClients[0])
		h.m.Origin(2*time.Second, false)
		h.m.Tick()
	}
	h.want(Crowd)
	if l := h.m.Status().Load; l.OriginLatency != 2*time.Second {
		t.Fatalf("latency %v", l.OriginLatency)
	}

	h2 := newHarness(t, Config{Window: 2 * time.Second, Threshold: 1000, ErrorRatio: 0.5, EnterAfter: time.Second})
	for i := range 30 {
		h2.c.t = h2.c.t.Add(100 * time.Millisecond)
		h2.m.Origin(10*time.Millisecond, i%3 != 0) // two in three fail
		h2.m.Tick()
	}
	h2.want(Crowd)
}

// TestOneClientCannotMakeACrowd: a client asking as fast as it likes counts for ClientRate at most, and so do
// the many addresses of one IPv6 /64; as many clients as a crowd has, each asking as a browser does, make one.
func TestOneClientCannotMakeACrowd(t *testing.T) {
	h := newHarness(t, Config{}) // the defaults: 50 requests/s, 5 per client
	h.runFrom(30*time.Second, 2000, []netip.Addr{netip.MustParseAddr("203.0.113.9")})
	h.want(Normal)
	if r := h.m.Status().Load.Rate; r > DefaultClientRate+DefaultClientBurst/DefaultWindow.Seconds() {
		t.Fatalf("one client weighs %.1f requests/s", r)
	}
	var oneNet []netip.Addr
	for i := range 500 {
		oneNet = append(oneNet, netip.MustParseAddr(fmt.Sprintf("2001:db8:1:2::%x", i+1)))
	}
	h.runFrom(30*time.Second, 2000, oneNet)
	h.want(Normal)

	var crowd []netip.Addr
	for i := range 20 {
		crowd = append(crowd, netip.MustParseAddr(fmt.Sprintf("198.51.100.%d", i+1)))
	}
	h.runFrom(20*time.Second, 20*3, crowd)
	h.want(Crowd)
}

// TestClientShareSettings: a negative ClientRate counts every request (one address standing for a crowd in
// tests); clients are forgotten once their share has refilled, so the monitor holds only recent ones.
func TestClientShareSettings(t *testing.T) {
	h := newHarness(t, Config{Window: 2 * time.Second, Threshold: 100, ClientRate: -1, EnterAfter: time.Second})
	h.runFrom(5*time.Second, 500, []netip.Addr{netip.MustParseAddr("127.0.0.1")})
	h.want(Crowd)

	h = newHarness(t, Config{Window: 2 * time.Second, ClientRate: 10, ClientBurst: 10})
	h.runFrom(time.Second, 200, manyClients[:100])
	if n := len(h.m.clients); n != 100 {
		t.Fatalf("%d clients held, want 100", n)
	}
	h.run(2*time.Second, 0) // 10 tokens at 10/s: full again after a second
	if n := len(h.m.clients); n != 0 {
		t.Fatalf("%d clients held after they went quiet", n)
	}
}
