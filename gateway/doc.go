// Package gateway is the server that runs beside a site's origin: it mounts the WebSocket tracker and the
// metrics endpoint under /.swarm/, and grows into the reverse proxy, asset catalogue, seeder and crowd monitor
// described in the design.
package gateway
