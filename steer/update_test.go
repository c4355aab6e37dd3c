package steer

import (
	"errors"
	"testing"

	"github.com/miekg/dns"
)

// TestUpdateError maps every way a server can turn down an update to an error (no network: BIND's real
// replies are covered by TestUpdaterBIND).
func TestUpdateError(t *testing.T) {
	reply := func(rcode int, tsigErr uint16, signed bool) *dns.Msg {
		m := new(dns.Msg)
		m.SetUpdate("example.test.")
		m.Response = true
		m.Rcode = rcode
		if signed || tsigErr != 0 {
			m.SetTsig("key.", dns.HmacSHA256, 300, 0)
			m.IsTsig().Error = tsigErr
		}
		return m
	}
	verifyFailed := dns.ErrSig
	tests := []struct {
		name      string
		resp      *dns.Msg
		verifyErr error
		want      error
	}{
		{"success, signed", reply(dns.RcodeSuccess, 0, true), nil, nil},
		{"BADSIG", reply(dns.RcodeNotAuth, dns.RcodeBadSig, false), verifyFailed, ErrBadSig},
		{"BADKEY", reply(dns.RcodeNotAuth, dns.RcodeBadKey, false), verifyFailed, ErrBadKey},
		{"BADTIME", reply(dns.RcodeNotAuth, dns.RcodeBadTime, true), nil, ErrBadTime},
		{"other TSIG error", reply(dns.RcodeNotAuth, 22, false), verifyFailed, ErrUpdateFailed},
		{"REFUSED", reply(dns.RcodeRefused, 0, true), nil, ErrRefused},
		{"NOTAUTH", reply(dns.RcodeNotAuth, 0, true), nil, ErrNotAuth},
		{"NOTZONE", reply(dns.RcodeNotZone, 0, true), nil, ErrNotZone},
		{"SERVFAIL", reply(dns.RcodeServerFailure, 0, true), nil, ErrUpdateFailed},
		{"YXRRSET", reply(dns.RcodeYXRrset, 0, true), nil, ErrUpdateFailed},
		{"success, unsigned", reply(dns.RcodeSuccess, 0, false), nil, ErrUnsigned},
		{"success, bad signature", reply(dns.RcodeSuccess, 0, true), verifyFailed, ErrUnsigned},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := updateError(tc.resp, tc.verifyErr)
			if tc.want == nil && err != nil || !errors.Is(err, tc.want) {
				t.Fatalf("updateError: %v, want %v", err, tc.want)
			}
			if err != nil {
				t.Logf("reads: %v", err)
			}
		})
	}
}
