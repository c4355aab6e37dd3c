// Package webseed is the helping role of a swarmgate server: it takes on site versions that another
// member's gateway asks for help with during a flash crowd, fetches them over BitTorrent, and serves them.
//
// A Helper owns the jobs it accepted. Accept checks a Job (the bencoded info dictionary must hash to the
// infohash the gateway named, and the helper must have spare capacity and no crowd of its own) and starts
// fetching the version through the shared seeder (gateway/seeder): over TCP/uTP from the gateway and other
// helpers, and from BEP 19 webseeds. Once every piece is verified the job is ready and the seeder keeps
// seeding it. The Helper is also the http.Handler that serves ready versions:
//
//   - to clients that DNS steers to this server, by Host: a path the version holds is served from the
//     fetched files (Range, ETag, the type the gateway gave); any other path is proxied to the job's
//     origin, and cacheable answers are kept in a bounded in-memory cache;
//   - to BitTorrent clients, as a BEP 19 webseed at /.swarm/seed/VERSION/PATH, in the gateway's layout
//     (BEP 47 padding files read as zeros).
//
// Release stops serving and seeding a job and deletes its data. Signed federation messages (who may ask,
// replay protection) live in webseed/federation; DNS steering lives with the gateway. This package trusts
// its caller to have verified who sent a Job, and trusts nothing in the Job but what it checks.
package webseed
