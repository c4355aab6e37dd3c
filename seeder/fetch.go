package seeder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
	"github.com/anacrolix/torrent/storage"
)

// ErrBadPeerAddr means a peer address given to Fetch is not host:port or its host does not resolve.
var ErrBadPeerAddr = errors.New("peer address must be host:port")

// stallNudge is how long Fetch lets the engine go without receiving any data while it has peers before it
// nudges every connection (see waitComplete). anacrolix/torrent v1.59.1's connection writer can miss the
// wake-up that tells it to act (peerConnMsgWriter.run asks for its condition channel only after releasing the
// client lock, so a broadcast in between is lost): a fresh connection then never declares interest, or a
// seeder never sends data it has read, until the one-minute keep-alive. On loopback 10 MB arrives in under a
// second, so a second with no byte at all means a stall, not a slow link worth waiting for.
const stallNudge = time.Second

// reAddPeers is how often Fetch gives the engine its peers again while it has no connection at all: the
// engine forgets an address whose dial failed, and a gateway that restarts is back in seconds.
const reAddPeers = 5 * time.Second

// holdBack and holdBackRate say when a fetch with preferred sources (Sources.PreferredPeers) turns to
// Sources.Peers and Sources.Webseeds as well: when the preferred ones, with the trackers' browsers, verified
// less than holdBackRate over the last holdBack. A fellow helper still fetching passes each piece on as it
// verifies it, in the order this fetch wants them (Sources.First), so one that keeps up costs the site
// nothing; one whose own link is full (a helper serving a crowd) would leave this helper's clients waiting
// while the site might have the link to spare. 512 KiB/s is 4 Mbit/s: a 14 MB site in half a minute.
const (
	holdBack     = 3 * time.Second
	holdBackRate = 512 << 10
)

// Sources are where Fetch takes a torrent's pieces from, and which files it takes first.
type Sources struct {
	// Peers are ordinary BitTorrent peers, "host:port" of their listeners, dialed over TCP (which needs
	// Config.ListenAddr).
	Peers []string
	// Webseeds are BEP 19 webseed URLs.
	Webseeds []string
	// PreferredPeers and PreferredWebseeds are sources like Peers and Webseeds that are asked first: while
	// they (with the trackers' browsers) keep the fetch moving, Peers and Webseeds are held back, and so
	// spared. A helper lists the site's other helpers here, and the site itself in Peers and Webseeds, so
	// that the site's link (full in a crowd) sends the helpers one copy rather than one each. Fetch turns to
	// Peers and Webseeds as well once they fall behind (holdBackRate), and never holds them back again.
	PreferredPeers    []string
	PreferredWebseeds []string
	// Trackers are WebSocket trackers whose swarm Fetch joins at once, as a leecher, to take pieces from the
	// browsers in it, and stays on to seed, as with AnnounceTo.
	Trackers []string
	// First lists files of the torrent, by their path below its name ('/'-separated), in the order they are
	// wanted: each is fetched ahead of the ones after it and of the files not listed (see firstPriorities).
	// Paths the torrent does not have are ignored.
	First []string
}

// firstPriorities are the piece priorities that Fetch gives the files of Sources.First, in the list's order;
// the files after the last priority's share it, and the files not listed keep the normal one. anacrolix
// requests pieces of a higher priority first, from every source, so what a page waits on first is what a
// helper, the swarm's first peer with nothing in it yet, has first to give the crowd. (From a webseed,
// anacrolix reads on from the first piece it wants to the end of the file's 64 MiB slice of the torrent, so
// the files after a listed one in the torrent may come before the next listed one.)
var firstPriorities = []torrent.PiecePriority{torrent.PiecePriorityNext, torrent.PiecePriorityReadahead, torrent.PiecePriorityHigh}

// Fetch downloads a torrent into dir (Config.DataDir when empty), at the paths AddTorrent expects, from the
// sources given, taking src.First's files first. It returns once every piece is verified against the
// torrent's hashes, and the torrent is then seeded like one added with AddTorrent (RemoveTorrent stops it).
// progress, if not nil, is called from Fetch's goroutine with the bytes verified so far and the torrent's
// length.
//
// When ctx ends or the seeder closes first, the torrent is dropped and the error says why; whatever was
// written under dir stays there for the caller to remove.
func (s *Seeder) Fetch(ctx context.Context, mi *metainfo.MetaInfo, dir string, src Sources,
	progress func(done, total int64)) error {
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return fmt.Errorf("seeder: %w: %w", ErrBadMetaInfo, err)
	}
	ih := mi.HashInfoBytes()
	if dir == "" {
		dir = s.cfg.DataDir
	}
	pis, err := peerInfos(ctx, src.Peers)
	if err != nil {
		return fmt.Errorf("seeder: fetch %s: %w", ih.HexString(), err)
	}
	preferred, err := peerInfos(ctx, src.PreferredPeers)
	if err != nil {
		return fmt.Errorf("seeder: fetch %s: %w", ih.HexString(), err)
	}
	for _, u := range src.Trackers {
		if err := checkTrackerURL(u); err != nil {
			return err
		}
	}

	e, err := s.reserve(ih, "fetch")
	if err != nil {
		return err
	}
	defer s.adding.Done()
	unreserve := func() {
		s.mu.Lock()
		delete(s.torrents, ih)
		s.dropExtrasLocked(e)
		s.notifySessionsLocked() // leave the swarms it joined while fetching
		s.mu.Unlock()
	}

	st := storage.NewFileOpts(storage.NewFileClientOpts{
		ClientBaseDir:   dir,
		PieceCompletion: storage.NewMapPieceCompletion(), // as in load: nothing kept, never closed
		UsePartFiles:    g.Some(false),                   // files appear at their final paths
		Logger:          s.engineLog,
	})
	t, isNew := s.cl.AddTorrentOpt(torrent.AddTorrentOpts{InfoHash: ih, InfoBytes: mi.InfoBytes, Storage: st})
	if !isNew {
		unreserve()
		return fmt.Errorf("seeder: fetch %s: %w", ih.HexString(), ErrDuplicateTorrent)
	}
	// Join the swarm on the trackers while fetching: browsers that hold pieces connect over WebRTC and
	// give them, sparing the peers and webseeds (often a site whose link is full in a crowd).
	s.mu.Lock()
	e.t = t
	s.announceToLocked(e, src.Trackers)
	s.mu.Unlock()
	start := time.Now()
	// First the files wanted first, so that the engine's first requests are for them, then the rest.
	prioritize(t, src.First)
	t.DownloadAll()
	srcs := &fetchSources{t: t, peers: pis, webseeds: src.Webseeds, preferred: preferred, preferredSeeds: src.PreferredWebseeds}
	srcs.start(s.log)
	if err := s.waitComplete(ctx, t, srcs, progress); err != nil {
		t.Drop()
		unreserve()
		return fmt.Errorf("seeder: fetch %s: %w", ih.HexString(), err)
	}
	s.mu.Lock()
	e.t, e.ready = t, true
	s.notifySessionsLocked()
	s.mu.Unlock()
	st2 := t.Stats()
	s.log.Info("seeder: fetched; seeding", slog.String("infohash", ih.HexString()), slog.String("name", info.BestName()),
		slog.Int64("bytes", info.TotalLength()), slog.Duration("took", time.Since(start)), slog.Bool("held_back", srcs.holding),
		slog.Int64("from_peers", st2.PeerConns.BytesReadUsefulData.Int64()), // browsers included
		slog.Int64("from_webseeds", st2.WebSeeds.BytesReadUsefulData.Int64()))
	return nil
}

// prioritize gives the files of t at the paths first (below the torrent's name) firstPriorities, in order.
func prioritize(t *torrent.Torrent, first []string) {
	byPath := map[string]*torrent.File{}
	for _, f := range t.Files() {
		fi := f.FileInfo()
		byPath[strings.Join(fi.BestPath(), "/")] = f
	}
	n := 0
	for _, p := range first {
		f, ok := byPath[p]
		if !ok {
			continue
		}
		delete(byPath, p) // listed twice: the first place counts
		f.SetPriority(firstPriorities[min(n, len(firstPriorities)-1)])
		n++
	}
}

// waitComplete waits until every piece of t is complete and recorded, reporting progress as it goes.
func (s *Seeder) waitComplete(ctx context.Context, t *torrent.Torrent, srcs *fetchSources,
	progress func(done, total int64)) error {
	sub := t.SubscribePieceStateChanges()
	defer sub.Close()
	tick := time.NewTicker(verifyPoll)
	defer tick.Stop()
	total := t.Length()
	lastDone := int64(-1)
	lastAdd, lastData, lastRead := time.Now(), time.Now(), int64(0)
	windowAt, windowDone := time.Now(), t.BytesCompleted() // the hold-back's measuring window
	for {
		if done := t.BytesCompleted(); done != lastDone {
			lastDone = done
			if progress != nil {
				progress(min(done, total), total)
			}
		}
		if allVerified(t) {
			return nil
		}
		st := t.Stats()
		now := time.Now()
		if read := st.BytesReadData.Int64(); read != lastRead {
			lastRead, lastData = read, now
		} else if now.Sub(lastData) >= stallNudge && st.ActivePeers > 0 {
			nudge(t)
			lastData = now
			s.log.Debug("seeder: fetch stalled; nudged", slog.String("infohash", t.InfoHash().HexString()))
		}
		if srcs.holding && now.Sub(windowAt) >= holdBack {
			if want := min(int64(holdBackRate*holdBack.Seconds()), total-windowDone); lastDone-windowDone < want {
				srcs.release(s.log, lastDone-windowDone, now.Sub(windowAt))
			}
			windowAt, windowDone = now, lastDone
		}
		if now.Sub(lastAdd) >= reAddPeers && st.ActivePeers == 0 {
			srcs.readd()
			lastAdd = now
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-s.ctx.Done():
			return ErrClosed
		case <-sub.Values:
		case <-tick.C:
		}
	}
}

// fetchSources are a fetch's peers and webseeds, with Peers and Webseeds held back while it has preferred ones.
type fetchSources struct {
	t              *torrent.Torrent
	peers          []torrent.PeerInfo
	webseeds       []string
	preferred      []torrent.PeerInfo
	preferredSeeds []string
	holding        bool // Peers and Webseeds not yet given to t
}

// start gives t its first sources: the preferred ones alone if there are any, else everything.
func (f *fetchSources) start(log *slog.Logger) {
	f.t.AddPeers(f.preferred)
	f.t.AddWebSeeds(f.preferredSeeds)
	if len(f.preferred)+len(f.preferredSeeds) == 0 || len(f.peers)+len(f.webseeds) == 0 {
		f.release(log, 0, 0)
		return
	}
	f.holding = true
	log.Debug("seeder: fetching from preferred sources first", slog.String("infohash", f.t.InfoHash().HexString()),
		slog.Int("preferred", len(f.preferred)+len(f.preferredSeeds)), slog.Int("held_back", len(f.peers)+len(f.webseeds)))
}

// release gives t the peers and webseeds held back; got is what the preferred sources gave in the last took.
func (f *fetchSources) release(log *slog.Logger, got int64, took time.Duration) {
	held := f.holding
	f.holding = false
	if held {
		log.Info("seeder: preferred sources fell behind; fetching from every source",
			slog.String("infohash", f.t.InfoHash().HexString()), slog.Int64("bytes", got), slog.Duration("in", took))
	}
	f.t.AddPeers(f.peers)
	f.t.AddWebSeeds(f.webseeds)
	if held {
		// The slow sources may hold requests for most of what is left (anacrolix asks a peer for up to its
		// queue's worth, hundreds of blocks); the new ones would get only what the engine steals back.
		nudge(f.t)
	}
}

// readd gives t its peers again (the engine forgets an address whose dial failed).
func (f *fetchSources) readd() {
	f.t.AddPeers(f.preferred)
	if !f.holding {
		f.t.AddPeers(f.peers)
	}
}

// nudge wakes every connection of t and, through them, their peers (see stallNudge). Dis- and re-allowing
// download has each connection cancel its requests and work them out again; the peer answers the cancels
// (it must reject each, BEP 6), which wakes its writer too. A connection that lost its wake-up with an
// update already pending ignores that, so each also gets a message written, which always wakes its writer:
// a ut_metadata reject, which a peer that has the metadata ignores.
func nudge(t *torrent.Torrent) {
	t.DisallowDataDownload()
	t.AllowDataDownload()
	reject := bencode.MustMarshal(pp.ExtendedMetadataRequestMsg{Type: pp.RejectMetadataExtensionMsgType})
	for _, pc := range t.PeerConns() {
		_ = pc.WriteExtendedMessage(pp.ExtensionNameMetadata, reject) // fails only if the peer lacks it
	}
}

// allVerified reports whether every piece of t is complete, with no check or mark under way.
func allVerified(t *torrent.Torrent) bool {
	for _, run := range t.PieceStateRuns() {
		if !run.Ok || !run.Complete || run.Checking || run.Marking {
			return false
		}
	}
	return true
}

// peerInfos parses "host:port" peer addresses, resolving host names.
func peerInfos(ctx context.Context, peers []string) ([]torrent.PeerInfo, error) {
	out := make([]torrent.PeerInfo, 0, len(peers))
	for _, p := range peers {
		host, port, err := net.SplitHostPort(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %q", ErrBadPeerAddr, p)
		}
		pn, err := net.LookupPort("tcp", port)
		if err != nil || pn == 0 {
			return nil, fmt.Errorf("%w: %q", ErrBadPeerAddr, p)
		}
		addrs := []netip.Addr{}
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = append(addrs, a)
		} else if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrBadPeerAddr, p, err)
		}
		for _, a := range addrs {
			out = append(out, torrent.PeerInfo{
				Addr:   netip.AddrPortFrom(a.Unmap(), uint16(pn)),
				Source: torrent.PeerSourceDirect,
			})
		}
	}
	return out, nil
}
