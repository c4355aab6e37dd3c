// Package webseed is the helper role of a swarmgate server, after the paper's cooperating servers that serve
// as webseeds: it takes on site versions that another member's gateway asks for help with during a flash
// crowd, fetches them over BitTorrent, and serves them. It never imports the site's role (package gateway);
// a member's server carries it beside its own site and hands it the seeder, its load and its listeners
// through Config.
//
// A Helper owns the jobs it accepted. Accept checks an Assignment (the bencoded info dictionary must hash to
// the infohash the gateway named, and the helper must have spare capacity and no crowd of its own) and starts
// fetching the version through the shared seeder (package seeder): over TCP/uTP from the gateway and other
// helpers, and from BEP 19 webseeds. Once every piece is verified the job is ready and the seeder keeps
// seeding it. A job is served from the moment its fetch begins: until it is ready, a file is read through
// the seeder (Seeder.Open), whose reads wait for verified pieces and put the pieces under them ahead of the
// rest of the fetch, so a helper is of use to the crowd within a second of accepting. The Helper is the
// http.Handler that serves them:
//
//   - to clients that DNS steers to this server, by Host: a path the version holds is served from the
//     fetched files, or the fetch under way (Range, ETag, the type the gateway gave); any other path is
//     proxied to the job's origin, and cacheable answers are kept in a bounded in-memory cache;
//   - to BitTorrent clients, as a BEP 19 webseed at /.swarm/seed/VERSION/PATH, in the gateway's layout
//     (BEP 47 padding files read as zeros).
//
// With Config.Federation, Help answers a member's signed help request (member.go): only for a site the
// federation file lists for that member and none of this server's own, with the member's job fetched from
// the member's own addresses and checked against the signed infohash; it reports Ready, once the job is
// served, with a proof of holding the piece the member's challenge names, fetched first (and, for a site
// served over HTTPS, once it holds its own certificate for the site's name, by ACME DNS-01 through the
// site's DNS). ReleaseFrom ends help when the requester asks.
//
// Release stops serving and seeding a job and deletes its data. Signed federation messages (who may ask,
// replay protection) live in package federation; DNS steering in package steer, used by the site's gateway.
// Accept trusts its caller to have verified who sent an Assignment, and trusts nothing in it but what it
// checks.
package webseed
