package gateway

import "net/http"

// operatorOnly admits only the operator's requests to h, by the dashboard's rule (trustedLocal: the
// dashboard token, or a request from this machine). /.swarm/metrics is the operator's: it names helpers,
// their addresses and the gateway's internals, which visitors have no business reading. A Prometheus
// server elsewhere scrapes with the token as a bearer token (`authorization: {credentials: TOKEN}`).
func (s *Server) operatorOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.trustedLocal(r) {
			http.Error(w, "swarmgate: metrics need the dashboard token (or a request from loopback)", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
