// Package federation implements the signed message layer between swarmgate servers that lend each other
// capacity: each server's Ed25519 key (made on first start in its data directory), the federation file that
// lists the members (name, URL, public key, addresses to publish in DNS), and the signed, time-stamped,
// replay-proof envelopes in which members ask for help (HelpRequest), accept or decline (Accept, Decline),
// report readiness (Ready), have the site's DNS publish a helper's ACME DNS-01 challenge so it gets its own
// certificate for the site's name (Challenge), and release helpers (Release).
//
// Seal makes an envelope; a Verifier opens one, refusing it unless it comes from a known member, is addressed
// to this member, carries that member's signature, is recent (within MaxSkew) and has a nonce not seen before.
// Handler serves the federation endpoint (Path) over HTTP and Client posts to it, checking that the signed
// reply answers its own request.
//
// The package knows nothing of fetching or serving sites: what a member does with a verified message is up to
// the function given to Handler.
package federation
