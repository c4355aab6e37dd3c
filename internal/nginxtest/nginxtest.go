// Package nginxtest runs Debian's nginx (package nginx-light) on loopback as a site's origin for tests: a
// temp prefix holding the site's files and a config like a typical static site's (gzip on for text, static
// assets with `expires 1h`, HTML without cache headers), and an access log the test reads to count what
// reached the origin. A test that asks for nginx fails when nginx cannot start: it never skips.
package nginxtest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testutil"
)

// Binary is Debian's nginx executable (package nginx-light, or any nginx package).
const Binary = "/usr/sbin/nginx"

// startTimeout bounds the wait for nginx to accept connections; it is up in a few milliseconds.
const startTimeout = 10 * time.Second

// Options configure one nginx.
type Options struct {
	// Files are the site's files by URL path ("/style.css"), served from the document root.
	Files map[string][]byte
	// Locations is nginx configuration inserted into the server block, before the default locations: a
	// test's dynamic answers (`location = /account { return 200 "hello $cookie_user"; }`).
	Locations string
}

// Nginx is one running nginx.
type Nginx struct {
	// URL is the origin's base URL, http://127.0.0.1:port.
	URL string
	// Root is the document root.
	Root    string
	logPath string
}

// Request is one line of the access log.
type Request struct {
	Method, URI    string
	Status         int
	BodyBytes      int64  // $body_bytes_sent: the body as sent, after gzip (chunked framing included)
	AcceptEncoding string // the request's Accept-Encoding
	Cookie         string // the request's Cookie
}

// logFormat is what Requests parses: tab-separated, so that header values with spaces stay whole.
const logFormat = `'$request_method\t$request_uri\t$status\t$body_bytes_sent\t$http_accept_encoding\t$http_cookie'`

const conf = `daemon off;
master_process off;
worker_processes 1;
error_log %[1]s/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 4096; }
http {
    types {
        text/html html htm;
        text/css css;
        application/javascript js mjs;
        application/json json;
        image/svg+xml svg;
        image/png png;
        image/jpeg jpg jpeg;
        video/mp4 mp4;
        font/woff2 woff2;
    }
    default_type application/octet-stream;
    log_format swarm %[2]s;
    access_log %[1]s/access.log swarm;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    sendfile on;
    keepalive_requests 100000;
    gzip on;
    gzip_types text/css application/javascript application/json image/svg+xml;
    gzip_vary on;
    server {
        listen 127.0.0.1:%[3]d;
        root %[1]s/html;
%[4]s
        location / {
            location ~* \.(css|js|mjs|json|svg|png|jpe?g|mp4|woff2)$ { expires 1h; }
        }
    }
}
`

// installOnce installs nginx-light when nginx is missing and the test runs as root (as CI does).
var (
	installOnce sync.Once
	installLog  string
)

func lookPath(t testing.TB) string {
	installOnce.Do(func() {
		if _, err := os.Stat(Binary); err == nil || os.Geteuid() != 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "-qq", "nginx-light")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		installLog = fmt.Sprintf("apt-get install nginx-light: %v\n%s", err, out)
	})
	if _, err := os.Stat(Binary); err != nil {
		t.Fatalf("nginxtest: %s is missing and could not be installed (bash .ci/test installs nginx-light): %v\n%s",
			Binary, err, installLog)
	}
	return Binary
}

// Start runs nginx until the test ends, and fails the test when it cannot.
func Start(t testing.TB, opts Options) *Nginx {
	t.Helper()
	bin := lookPath(t)
	dir := t.TempDir()
	// The prefix must be traversable by nginx whatever user it is: t.TempDir is 0700.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"html", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, b := range opts.Files {
		f := filepath.Join(dir, "html", filepath.FromSlash(strings.TrimPrefix(p, "/")))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var lastErr error
	for range 5 { // the free port may be taken between finding it and nginx binding it: try another
		port := freePort(t)
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"),
			[]byte(fmt.Sprintf(conf, dir, logFormat, port, opts.Locations)), 0o644); err != nil {
			t.Fatal(err)
		}
		n, err := run(t, bin, dir, port)
		if err == nil {
			return n
		}
		lastErr = err
	}
	t.Fatalf("nginxtest: %v", lastErr)
	return nil
}

// run starts nginx on port and waits until it accepts connections.
func run(t testing.TB, bin, dir string, port int) (*Nginx, error) {
	proc := testutil.StartProcess(t, exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log")),
		"nginx", "NGINX_LOG")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(startTimeout)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			break
		}
		select {
		case <-proc.Exited():
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("nginx exited before accepting connections: %v\n%s%s", proc.Err(), proc.Logs.String(), errLog)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			proc.Stop()
			return nil, fmt.Errorf("nginx did not accept connections on %s within %v\n%s", addr, startTimeout, proc.Logs.String())
		}
	}
	t.Cleanup(func() { // StartProcess's cleanup has stopped nginx and logged its output
		if t.Failed() {
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx's error log:\n%s", errLog)
		}
	})
	return &Nginx{URL: "http://" + addr, Root: filepath.Join(dir, "html"), logPath: filepath.Join(dir, "access.log")}, nil
}

// Requests returns the access log so far. nginx writes each line as its request ends.
func (n *Nginx) Requests(t testing.TB) []Request {
	t.Helper()
	f, err := os.Open(n.logPath)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("nginxtest: %v", err)
	}
	defer f.Close()
	var reqs []Request
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 6 {
			t.Fatalf("nginxtest: access log line %q", sc.Text())
		}
		status, _ := strconv.Atoi(fields[2])
		size, _ := strconv.ParseInt(fields[3], 10, 64)
		unset := func(s string) string { return strings.TrimPrefix(s, "-") }
		reqs = append(reqs, Request{Method: fields[0], URI: fields[1], Status: status, BodyBytes: size,
			AcceptEncoding: unset(fields[4]), Cookie: unset(fields[5])})
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("nginxtest: reading the access log: %v", err)
	}
	return reqs
}

// settleInterval is how long the access log must stay unchanged for Settled: nginx logs a request right
// after sending its response, well within a millisecond on loopback.
const settleInterval = 100 * time.Millisecond

// Settled returns the access log once it has stopped growing (for settleInterval), so that requests whose
// responses the client already has are in it.
func (n *Nginx) Settled(t testing.TB) []Request {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	prev := n.Requests(t)
	for {
		time.Sleep(settleInterval)
		cur := n.Requests(t)
		if len(cur) == len(prev) || time.Now().After(deadline) {
			return cur
		}
		prev = cur
	}
}

// Count is how many requests in the settled log asked for uri (path and query as sent).
func (n *Nginx) Count(t testing.TB, uri string) int {
	t.Helper()
	c := 0
	for _, r := range n.Settled(t) {
		if r.URI == uri {
			c++
		}
	}
	return c
}

// Get fetches path from nginx directly with the given Accept-Encoding, without decompressing: what nginx
// alone sends a browser.
func (n *Nginx) Get(t testing.TB, path, acceptEncoding string) (*http.Response, []byte) {
	t.Helper()
	return Fetch(t, n.URL+path, acceptEncoding)
}

// Fetch GETs url with the given Accept-Encoding ("" sends none) and returns the body as sent on the wire.
func Fetch(t testing.TB, url, acceptEncoding string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	tr := &http.Transport{DisableCompression: true, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("nginxtest: GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&b); err != nil {
		t.Fatalf("nginxtest: GET %s: %v", url, err)
	}
	return resp, []byte(b.String())
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
