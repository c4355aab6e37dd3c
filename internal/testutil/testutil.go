// Package testutil holds what many packages' tests share and is not about logging (internal/testlog) or
// browsers (internal/browsertest): waiting for a condition, for now.
package testutil

import (
	"testing"
	"time"
)

// pollEvery is how often Eventually checks its condition: often enough that a test is not slowed by it,
// rarely enough that a condition taking a lock does not compete with the code under test.
const pollEvery = 10 * time.Millisecond

// Eventually waits until cond holds, checking it every few milliseconds, and fails the test if it does not
// within the given time. what names the condition in the failure.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(pollEvery)
	}
}
