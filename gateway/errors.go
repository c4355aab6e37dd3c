package gateway

import "errors"

// Errors of the cooperation between federation members.
var (
	ErrNotAsked  = errors.New("no help request of ours matches")
	ErrBadProof  = errors.New("proof of holding the content does not match")
	ErrUnhealthy = errors.New("helper failed its health check")
	// errLate marks a health check the helper did not answer in time (FederationConfig.HealthTimeout).
	errLate = errors.New("no answer in time")
	// ErrNoDNS means a helper asked for an ACME challenge record, but this gateway publishes no DNS.
	ErrNoDNS = errors.New("this gateway publishes no DNS records")
	// ErrNotOurSite means a member asked for an ACME challenge record for a name that is not this site's.
	ErrNotOurSite = errors.New("not this site's name")
	// ErrTooManyChallenges means a helper already has maxChallengesPerHelper challenge records published.
	ErrTooManyChallenges = errors.New("too many challenge records for one helper")
)
