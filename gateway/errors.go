package gateway

import "errors"

// Errors of the cooperation between federation members.
var (
	ErrNotAsked  = errors.New("no help request of ours matches")
	ErrBadProof  = errors.New("proof of holding the content does not match")
	ErrUnhealthy = errors.New("helper failed its health check")
)
