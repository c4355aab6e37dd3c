// Package gateway is the site owner's role: the server that runs beside a site's origin. It is the reverse
// proxy (storing public heavy assets, rewriting pages for the loader), the catalogue of site versions and
// their manifests, the webseed of its own versions, the host of the tracker, the seeder, the dashboard and
// the crowd monitor, and, in a federation, the coordinator that recruits helpers in a crowd, publishes them
// in DNS and releases them after it.
//
// A federation member also carries the helper role (package webseed) beside its site: helping.go is the
// seam, where the server hands the role its seeder, load, listeners and own names, and routes the role's
// requests and federation messages to it. The coordinator sees the server through siteServer only.
//
// Config's sub-structs group the settings (Net, Site, Visitors, Clients); Validate fills in defaults and
// checks values. New binds the listeners and starts the seeder; Run serves until its context ends; Close
// releases what New acquired, also after a failed New, which uses it itself.
package gateway
