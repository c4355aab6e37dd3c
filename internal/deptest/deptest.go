// Package deptest states the rules of swarmgate's tree and checks them in its test: which packages may
// import which (after tailscale's tstest/deptest), that every package's directory is its name and has a doc
// comment, and that no Go file grows past maxLines. It has no code of its own.
package deptest
