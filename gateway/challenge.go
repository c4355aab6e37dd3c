package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/swarmgate/swarmgate/federation"
)

// challengeRecord is an ACME DNS-01 challenge value the site's DNS publishes for a helper (at
// acmeChallengeName), so that the helper gets a certificate of its own for the site's name.
type challengeRecord struct {
	member  string
	expires time.Time
}

// acmeChallengeName is where DNS-01 challenges for name are published (RFC 8555 8.4).
func acmeChallengeName(name string) string { return "_acme-challenge." + name }

// challenge publishes, or removes, a helper's ACME DNS-01 challenge for the site's name. Only a member
// currently recruited for this site may publish, only for the site's own name, and at most
// maxChallengesPerHelper values at once; the record goes when the helper asks, when it is released or
// declines, and after ChallengeTimeout. It returns once the record is live (or gone).
func (c *coordinator) challenge(ctx context.Context, from string, m *federation.Challenge) error {
	site := c.site
	if c.dns == nil || site == "" {
		return fmt.Errorf("gateway: challenge from %s: %w", from, ErrNoDNS)
	}
	if !strings.EqualFold(strings.TrimSuffix(m.Site, "."), site) {
		return fmt.Errorf("gateway: challenge from %s for %q: %w: %w", from, m.Site, federation.ErrForbidden, ErrNotOurSite)
	}
	name := acmeChallengeName(site)
	if m.Remove {
		c.mu.Lock()
		r := c.challenges[m.Value]
		mine := r != nil && r.member == from
		if mine {
			delete(c.challenges, m.Value)
		}
		c.mu.Unlock()
		if !mine {
			return nil // already gone (timed out, released), or never ours to remove
		}
		if err := c.dns.RemoveTXT(ctx, name, m.Value); err != nil {
			return fmt.Errorf("gateway: challenge from %s: %w", from, err)
		}
		c.log.Info("coordinator: challenge removed", slog.String("member", from))
		return nil
	}

	c.mu.Lock()
	h := c.helpers[from]
	if h == nil || h.state != helperAsked && h.state != helperAccepted && h.state != helperReady {
		c.mu.Unlock()
		return fmt.Errorf("gateway: challenge from %s: %w: %w", from, federation.ErrForbidden, ErrNotAsked)
	}
	r := c.challenges[m.Value]
	switch {
	case r != nil && r.member != from:
		c.mu.Unlock()
		return fmt.Errorf("gateway: challenge from %s: %w: value published for another member", from, federation.ErrForbidden)
	case r != nil: // asked again: it is live already
		r.expires = time.Now().Add(c.cfg.ChallengeTimeout)
		c.mu.Unlock()
		return nil
	}
	n := 0
	for _, r := range c.challenges {
		if r.member == from {
			n++
		}
	}
	if n >= maxChallengesPerHelper {
		c.mu.Unlock()
		return fmt.Errorf("gateway: challenge from %s: %w: %w (%d)", from, federation.ErrForbidden, ErrTooManyChallenges, n)
	}
	r = &challengeRecord{member: from, expires: time.Now().Add(c.cfg.ChallengeTimeout)}
	c.challenges[m.Value] = r
	c.mu.Unlock()

	start := time.Now()
	if err := c.dns.AddTXT(ctx, name, m.Value); err != nil {
		c.mu.Lock()
		if c.challenges[m.Value] == r {
			delete(c.challenges, m.Value)
		}
		c.mu.Unlock()
		// The update may have reached the DNS server though its answer did not reach us.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		_ = c.dns.RemoveTXT(rctx, name, m.Value)
		cancel()
		return fmt.Errorf("gateway: challenge from %s: %w", from, err)
	}
	c.log.Info("coordinator: challenge published", slog.String("member", from), slog.String("name", name),
		slog.Duration("took", time.Since(start)))
	return nil
}

// expireChallenges removes the challenge records whose ChallengeTimeout has passed at now.
func (c *coordinator) expireChallenges(ctx context.Context, now time.Time) {
	c.dropChallenges(ctx, func(r *challengeRecord) bool { return now.After(r.expires) })
}

// dropChallenges removes the challenge records that drop selects from DNS.
func (c *coordinator) dropChallenges(ctx context.Context, drop func(*challengeRecord) bool) {
	c.mu.Lock()
	var values []string
	var members []string
	for v, r := range c.challenges {
		if drop(r) {
			values = append(values, v)
			members = append(members, r.member)
			delete(c.challenges, v)
		}
	}
	c.mu.Unlock()
	if len(values) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	name := acmeChallengeName(c.site)
	for i, v := range values {
		if err := c.dns.RemoveTXT(ctx, name, v); err != nil {
			c.log.Error("coordinator: removing a challenge record", slog.String("member", members[i]), slog.Any("err", err))
			continue
		}
		c.log.Info("coordinator: challenge record dropped", slog.String("member", members[i]))
	}
}
