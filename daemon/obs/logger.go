// Package obs is robodistilld's observability: its zap logger (JSON for the journal,
// console for a terminal), Prometheus metrics on a private registry that the control
// thread feeds without allocating, the /metrics and /healthz HTTP server, and systemd
// notification (readiness, status, stopping, watchdog).
//
// The control thread only calls the Metrics methods documented as allocation-free; the
// HTTP server and the watchdog read what it stored at their own pace.
package obs

import (
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"
)

// NewLogger returns the daemon's logger, writing to stderr. format is "auto", "json" or
// "console"; level is "debug", "info", "warn" or "error".
//
// "auto" picks JSON when stderr goes to the journal (systemd sets JOURNAL_STREAM) or is
// not a terminal, and the human console format on a terminal. Under the journal each line
// also starts with its syslog priority ("<3>" for errors), which journald strips and
// keeps, so that `journalctl -p warning -u robodistilld` works.
func NewLogger(format, level string, stderrIsTerminal bool) (*zap.Logger, error) {
	return newLogger(zapcore.Lock(os.Stderr), format, level, stderrIsTerminal, os.Getenv("JOURNAL_STREAM") != "")
}

// IsTerminal reports whether f is a terminal (a character device), for NewLogger's
// stderrIsTerminal.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// newLogger is NewLogger writing to w, told whether w is a terminal and the journal.
func newLogger(w zapcore.WriteSyncer, format, level string, terminal, journal bool) (*zap.Logger, error) {
	lvl, err := parseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("obs.NewLogger: %w", err)
	}
	var enc zapcore.Encoder
	switch format {
	case "auto":
		if journal || !terminal {
			format = "json"
		} else {
			format = "console"
		}
	case "json", "console":
	default:
		return nil, fmt.Errorf("obs.NewLogger: format %q: want auto, json or console", format)
	}
	if format == "json" {
		ec := zap.NewProductionEncoderConfig()
		ec.TimeKey = "ts"
		ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
		ec.EncodeDuration = zapcore.StringDurationEncoder
		enc = zapcore.NewJSONEncoder(ec)
		if journal {
			enc = priorityEncoder{enc}
		}
	} else {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		if terminal {
			ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
		}
		enc = zapcore.NewConsoleEncoder(ec)
	}
	core := zapcore.NewCore(enc, w, lvl)
	return zap.New(core, zap.ErrorOutput(w), zap.AddCaller()), nil
}

func parseLevel(s string) (zapcore.Level, error) {
	switch s {
	case "debug":
		return zapcore.DebugLevel, nil
	case "info":
		return zapcore.InfoLevel, nil
	case "warn":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	return 0, fmt.Errorf("level %q: want debug, info, warn or error", s)
}

// priorityEncoder prefixes each entry with its sd-daemon(3) syslog priority.
type priorityEncoder struct{ zapcore.Encoder }

var bufferPool = buffer.NewPool()

func (e priorityEncoder) Clone() zapcore.Encoder { return priorityEncoder{e.Encoder.Clone()} }

func (e priorityEncoder) EncodeEntry(ent zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	line, err := e.Encoder.EncodeEntry(ent, fields)
	if err != nil {
		return nil, err
	}
	out := bufferPool.Get()
	out.AppendByte('<')
	out.AppendInt(int64(syslogPriority(ent.Level)))
	out.AppendByte('>')
	_, _ = out.Write(line.Bytes())
	line.Free()
	return out, nil
}

// syslogPriority maps zap levels to syslog's: debug 7, info 6, warning 4, error 3, and 2
// (critical) for the panicking and fatal levels.
func syslogPriority(l zapcore.Level) int {
	switch {
	case l <= zapcore.DebugLevel:
		return 7
	case l == zapcore.InfoLevel:
		return 6
	case l == zapcore.WarnLevel:
		return 4
	case l == zapcore.ErrorLevel:
		return 3
	}
	return 2
}

// RateLimited returns a logger that writes the first entry of each level and message per
// interval and drops the repeats: for the control loop, where a persistent condition
// would otherwise log 50 times a second.
func RateLimited(l *zap.Logger, interval time.Duration) *zap.Logger {
	return l.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, interval, 1, 0)
	}))
}
