package webseed

import (
	"errors"
	"net/http"
)

// Errors of the helper. Returned errors wrap them with context and the "webseed:" prefix; test them with
// errors.Is.
var (
	// ErrBadConfig means a required Config field is missing.
	ErrBadConfig = errors.New("invalid config")
	// ErrNoCapacity means the helper has no room for another job: Config.MaxJobs jobs are under way, the
	// version does not fit in Config.MaxBytes, or Config.Load reports the server fully busy.
	ErrNoCapacity = errors.New("no spare capacity")
	// ErrInCrowd means the helper's own site is in a flash crowd; it helps nobody until that ends.
	ErrInCrowd = errors.New("own site in a crowd")
	// ErrInfoHashMismatch means a job's info dictionary does not hash to its infohash.
	ErrInfoHashMismatch = errors.New("info dictionary does not hash to the infohash")
	// ErrBadJob means a job is malformed: a missing or invalid field, an info dictionary that does not
	// decode or names unsafe paths, or limits exceeded.
	ErrBadJob = errors.New("invalid job")
	// ErrTaken means the helper holds a job for the same site or version for another requester.
	ErrTaken = errors.New("site or version held for another requester")
	// ErrNotRequester means a job may be renewed or released only by the one that requested it.
	ErrNotRequester = errors.New("job requested by someone else")
	// ErrUnknownJob means no job with that infohash is held.
	ErrUnknownJob = errors.New("no such job")
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("helper closed")
	// ErrVerify means fetched data does not match the SHA-256 the job gave for a file.
	ErrVerify = errors.New("file does not match its SHA-256")
	// ErrNotServed means a request names a site or version the helper serves no ready copy of.
	ErrNotServed = errors.New("not served here")
	// ErrLoop means a request already passed through a swarmgate helper: an origin URL that resolves back
	// to a helper would otherwise bounce requests between them.
	ErrLoop = errors.New("request loop through helpers")
	// ErrOrigin means the origin could not be reached or did not answer.
	ErrOrigin = errors.New("origin unreachable")
)

// statusOf maps an error met while serving a request to the HTTP status the client gets.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNotServed):
		return http.StatusNotFound
	case errors.Is(err, ErrLoop):
		return http.StatusLoopDetected
	case errors.Is(err, ErrOrigin):
		return http.StatusBadGateway
	default:
		return http.StatusInternalServerError
	}
}
