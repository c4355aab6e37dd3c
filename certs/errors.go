package certs

import "errors"

// Errors of the package. Returned errors wrap them with context and the "certs:" prefix.
var (
	// ErrBadConfig means a Config field is invalid; the message names it.
	ErrBadConfig = errors.New("invalid configuration")
	// ErrBadName means a name is not a host name a certificate can be obtained for.
	ErrBadName = errors.New("invalid host name")
	// ErrNoDNS01 means the CA offered no dns-01 challenge for a name.
	ErrNoDNS01 = errors.New("CA offers no dns-01 challenge")
	// ErrBadCertificate means the CA issued, or the directory holds, a certificate that does not cover the
	// name or does not match its key.
	ErrBadCertificate = errors.New("certificate does not fit")
)
