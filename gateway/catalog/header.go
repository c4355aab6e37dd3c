package catalog

import (
	"net/http"
	"net/textproto"
	"strings"
)

// notStored are the response fields a stored copy never keeps, beyond the hop-by-hop ones (RFC 9110 §7.6.1):
// Set-Cookie is one client's state and must never be replayed to others; Content-Length, Content-Range and
// Transfer-Encoding describe one message's framing, which the gateway makes anew when it serves the copy;
// Date and Age are the gateway's to give when it answers (RFC 9111 §5.1); Content-Encoding is never stored
// because the store holds identity bodies only.
var notStored = []string{
	"Set-Cookie", "Set-Cookie2", "Content-Length", "Content-Range", "Transfer-Encoding", "Date", "Age",
	"Content-Encoding", "X-Swarmgate",
}

// hopByHop are the fields that concern one connection only (RFC 9110 §7.6.1), besides those a Connection
// field names.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
	"Trailer", "Upgrade",
}

// notUpdated are the fields a 304's values do not replace in a stored copy (RFC 9111 §3.2): the stored body's
// own description, which only a full response can change.
var notUpdated = []string{"Content-Type", "Content-Encoding", "Content-Length", "Content-Range"}

// StoredHeader returns the fields of a response header that a shared cache keeps with the body and replays
// when it serves the copy: every end-to-end field (Content-Disposition, Content-Security-Policy, CORS,
// Link, ...), without the hop-by-hop ones and those in notStored. h is not modified.
func StoredHeader(h http.Header) http.Header {
	out := h.Clone()
	if out == nil {
		out = http.Header{}
	}
	for _, v := range h.Values("Connection") {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				out.Del(f)
			}
		}
	}
	for _, k := range hopByHop {
		out.Del(k)
	}
	for _, k := range notStored {
		out.Del(k)
	}
	return out
}

// UpdateHeader returns stored updated with the fields of a 304 (Not Modified) response, as RFC 9111 §4.3.4
// asks: each field the 304 carries replaces the stored one, except those StoredHeader drops and those that
// describe the stored body (notUpdated). Neither argument is modified.
func UpdateHeader(stored, notModified http.Header) http.Header {
	out := stored.Clone()
	if out == nil {
		out = http.Header{}
	}
	for k, vs := range StoredHeader(notModified) {
		if isOneOf(k, notUpdated) {
			continue
		}
		out[k] = vs
	}
	return out
}

func isOneOf(k string, list []string) bool {
	for _, x := range list {
		if strings.EqualFold(k, x) {
			return true
		}
	}
	return false
}
