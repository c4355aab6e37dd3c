// Package trackerload owns the WebSocket tracker benchmark: a load generator that opens many WebTorrent
// tracker sockets on loopback against a tracker running in another process, and measures resident memory per
// idle socket (from /proc/PID/status), announce throughput and announce latency. It also starts the trackers
// under test as child processes (swarmgate itself, or the bittorrent-tracker npm server through
// node_server.mjs) and prints their figures side by side.
//
// The load generator speaks the protocol with raw gorilla/websocket clients rather than tracker.Client: one
// goroutine and no JSON encoding per socket, so that on a small machine the generator is not what limits the
// figures.
package trackerload
