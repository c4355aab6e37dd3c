// Package certs owns the TLS certificates a helper serves other members' sites with over HTTPS: a
// certificate of its own for each site's name, obtained from an ACME CA (RFC 8555) by the DNS-01 challenge.
// The helper cannot publish DNS records for a site it does not own, so Obtain hands each challenge's TXT
// value to a Publish function, which has the site's DNS publish it (in swarmgate, a signed federation message
// to the site's gateway): the site's private key never leaves the site.
//
// A Manager keeps its ACME account key and the certificates with their keys in a directory, and reuses a
// certificate until a third of its lifetime is left, so a helper recruited again by the same site in a later
// crowd serves at once. The package knows nothing of federations or crowds.
package certs
