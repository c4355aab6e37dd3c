package seeder

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// levelHandler passes on records at or above min. The engine's log adapter calls Handle without asking
// Enabled first, so Handle checks too.
type levelHandler struct {
	h   slog.Handler
	min slog.Leveler
}

func (l levelHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min.Level() && l.h.Enabled(ctx, lv)
}

// routine are messages the engine logs above their weight. "initial read failed": a file reader (Open)
// waiting for a piece while nudge (fetch.go) disallows downloads for an instant; the reader reads again.
var routine = map[string]slog.Level{"initial read failed": slog.LevelDebug}

func (l levelHandler) Handle(ctx context.Context, r slog.Record) error {
	if lv, ok := routine[r.Message]; ok && r.Level > lv {
		r.Level = lv
	}
	if !l.Enabled(ctx, r.Level) {
		return nil
	}
	return l.h.Handle(ctx, r)
}

func (l levelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return levelHandler{l.h.WithAttrs(as), l.min}
}

func (l levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{l.h.WithGroup(name), l.min}
}

// pionLoggerFactory adapts pion's leveled loggers to slog. Pion's levels describe one connection from
// pion's point of view; for a server with hundreds of browsers coming and going, pion's warnings are routine
// (every default browser sends mDNS candidates pion ignores; every closing connection drops a packet or two),
// so they go to Debug, and a pion error, which concerns one peer, to Info.
type pionLoggerFactory struct{ log *slog.Logger }

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With(slog.String("scope", scope))}
}

type pionLogger struct{ log *slog.Logger }

const levelTrace = slog.LevelDebug - 4

var _ logging.LeveledLogger = pionLogger{}

func (p pionLogger) logf(lv slog.Level, format string, args ...any) {
	if p.log.Enabled(context.Background(), lv) {
		p.log.Log(context.Background(), lv, fmt.Sprintf(format, args...))
	}
}

func (p pionLogger) Trace(msg string)                  { p.logf(levelTrace, "%s", msg) }
func (p pionLogger) Tracef(format string, args ...any) { p.logf(levelTrace, format, args...) }
func (p pionLogger) Debug(msg string)                  { p.logf(levelTrace, "%s", msg) }
func (p pionLogger) Debugf(format string, args ...any) { p.logf(levelTrace, format, args...) }
func (p pionLogger) Info(msg string)                   { p.logf(slog.LevelDebug, "%s", msg) }
func (p pionLogger) Infof(format string, args ...any)  { p.logf(slog.LevelDebug, format, args...) }
func (p pionLogger) Warn(msg string)                   { p.logf(slog.LevelDebug, "%s", msg) }
func (p pionLogger) Warnf(format string, args ...any)  { p.logf(slog.LevelDebug, format, args...) }
func (p pionLogger) Error(msg string)                  { p.logf(slog.LevelInfo, "%s", msg) }
func (p pionLogger) Errorf(format string, args ...any) { p.logf(slog.LevelInfo, format, args...) }
