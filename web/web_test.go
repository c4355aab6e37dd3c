package web

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/swarmapi"
)

func snap() Snapshot {
	return Snapshot{Time: time.Unix(1700000000, 0), State: "crowd", Rate: 123, Threshold: 50,
		Bytes: map[string]int64{"origin": 10, "peers": 90}, Offload: 0.9}
}

func TestAccess(t *testing.T) {
	h := New(Config{Snapshot: snap, Token: "s3cret"})
	for _, tc := range []struct {
		name, remote, url, auth string
		fwd                     bool
		want                    int
	}{
		{"loopback", "127.0.0.1:5000", swarmapi.PathStatus, "", false, 200},
		{"loopback v6", "[::1]:5000", swarmapi.PathStatus, "", false, 200},
		{"remote without token", "203.0.113.9:5000", swarmapi.PathStatus, "", false, 403},
		{"remote with wrong token", "203.0.113.9:5000", swarmapi.PathStatus + "?token=nope", "", false, 403},
		{"remote with token", "203.0.113.9:5000", swarmapi.PathStatus + "?token=s3cret", "", false, 200},
		{"remote with bearer", "203.0.113.9:5000", swarmapi.PathStatus, "Bearer s3cret", false, 200},
		{"proxied through loopback", "127.0.0.1:5000", swarmapi.PathStatus, "", true, 403},
	} {
		r := httptest.NewRequest("GET", tc.url, nil)
		r.RemoteAddr = tc.remote
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		if tc.fwd {
			r.Header.Set("X-Forwarded-For", "203.0.113.9")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, w.Code, tc.want)
		}
	}
	// A token in the page URL becomes a cookie for the page's own requests.
	r := httptest.NewRequest("GET", swarmapi.PathDashboard+"?token=s3cret", nil)
	r.RemoteAddr = "203.0.113.9:5000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	cookies := w.Result().Cookies()
	if w.Code != 200 || len(cookies) != 1 || !cookies[0].HttpOnly {
		t.Fatalf("dashboard with token: %d %v", w.Code, cookies)
	}
	r = httptest.NewRequest("GET", "/.swarm/dashboard/app.js", nil)
	r.RemoteAddr = "203.0.113.9:5000"
	r.AddCookie(cookies[0])
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "EventSource") {
		t.Fatalf("script with the cookie: %d", w.Code)
	}
}

func TestStatusAndStream(t *testing.T) {
	h := New(Config{Snapshot: snap, Interval: 20 * time.Millisecond})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	resp, err := http.Get(srv.URL + swarmapi.PathStatus)
	if err != nil {
		t.Fatal(err)
	}
	var s Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || s.Rate != 123 || s.State != "crowd" {
		t.Fatalf("status %+v %v", s, err)
	}
	resp.Body.Close()
	resp, err = http.Get(srv.URL + swarmapi.PathStatusStream)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	events := 0
	for sc.Scan() && events < 3 {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			if err := json.Unmarshal([]byte(data), &s); err != nil {
				t.Fatal(err)
			}
			events++
		}
	}
	if events != 3 {
		t.Fatalf("got %d events", events)
	}
}

// TestLocalDecidesWithoutAToken: the server that mounts the dashboard says which requests come from this
// machine; a token still admits anyone.
func TestLocalDecidesWithoutAToken(t *testing.T) {
	h := New(Config{Snapshot: snap, Token: "s3cret", Local: func(r *http.Request) bool { return r.Header.Get("X-Test-Local") == "yes" }})
	for _, tc := range []struct {
		remote, url, local string
		want               int
	}{
		{"127.0.0.1:5000", swarmapi.PathStatus, "", 403}, // loopback peer, but the server says it is not local
		{"203.0.113.9:5000", swarmapi.PathStatus, "yes", 200},
		{"203.0.113.9:5000", swarmapi.PathStatus + "?token=s3cret", "", 200},
	} {
		r := httptest.NewRequest("GET", tc.url, nil)
		r.RemoteAddr = tc.remote
		r.Header.Set("X-Test-Local", tc.local)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s %s local=%q: %d, want %d", tc.remote, tc.url, tc.local, w.Code, tc.want)
		}
	}
	r := httptest.NewRequest("GET", swarmapi.PathStatus, nil)
	r.Header.Set("Authorization", "Bearer s3cret")
	if !h.HasToken(r) || New(Config{Snapshot: snap}).HasToken(r) {
		t.Error("HasToken: want true with the configured token, false without one configured")
	}
}
