package obs

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestLoggerFormats(t *testing.T) {
	for _, tc := range []struct {
		name              string
		format            string
		terminal, journal bool
		want              string // "json", "journal" (json with priority) or "console"
		color             bool
	}{
		{"auto on a terminal", "auto", true, false, "console", true},
		{"auto under the journal", "auto", false, true, "journal", false},
		{"auto, journal wins over a terminal", "auto", true, true, "journal", false},
		{"auto into a pipe", "auto", false, false, "json", false},
		{"json on a terminal", "json", true, false, "json", false},
		{"console into a file", "console", false, false, "console", false},
		{"console under the journal", "console", false, true, "console", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := newLogger(zapcore.AddSync(&buf), tc.format, "info", tc.terminal, tc.journal)
			if err != nil {
				t.Fatal(err)
			}
			l.Info("model loaded", zap.String("kind", "reward"), zap.Duration("took", 1500*time.Millisecond))
			l.Warn("camera stale")
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if len(lines) != 2 {
				t.Fatalf("%d lines: %q", len(lines), buf.String())
			}
			switch tc.want {
			case "json", "journal":
				for i, prio := range []string{"<6>", "<4>"} {
					line := lines[i]
					if tc.want == "journal" {
						if !strings.HasPrefix(line, prio) {
							t.Fatalf("line %d %q lacks priority %s", i, line, prio)
						}
						line = strings.TrimPrefix(line, prio)
					}
					var rec map[string]any
					if err := json.Unmarshal([]byte(line), &rec); err != nil {
						t.Fatalf("line %d is not JSON: %q", i, line)
					}
					if i == 0 && (rec["msg"] != "model loaded" || rec["level"] != "info" || rec["kind"] != "reward" || rec["took"] != "1.5s" || rec["ts"] == nil || rec["caller"] == nil) {
						t.Fatalf("record %v", rec)
					}
					if i == 1 && rec["level"] != "warn" {
						t.Fatalf("record %v", rec)
					}
				}
			case "console":
				if strings.HasPrefix(lines[0], "{") || strings.HasPrefix(lines[0], "<") || !strings.Contains(lines[0], "model loaded") ||
					!strings.Contains(lines[0], `"kind": "reward"`) {
					t.Fatalf("not the console format: %q", lines[0])
				}
				if hasColor := strings.Contains(buf.String(), "\x1b["); hasColor != tc.color {
					t.Fatalf("colour %v, want %v: %q", hasColor, tc.color, buf.String())
				}
			}
		})
	}
}

func TestLoggerLevel(t *testing.T) {
	var buf bytes.Buffer
	l, err := newLogger(zapcore.AddSync(&buf), "json", "warn", false, true)
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("d")
	l.Info("i")
	l.Warn("w")
	l.Error("e")
	if got, want := prefixes(buf.String()), "<4> <3>"; got != want {
		t.Fatalf("priorities %q, want %q", got, want)
	}
	buf.Reset()
	l, _ = newLogger(zapcore.AddSync(&buf), "json", "debug", false, true)
	l.Debug("d")
	l.Info("i")
	if got, want := prefixes(buf.String()), "<7> <6>"; got != want {
		t.Fatalf("priorities %q, want %q", got, want)
	}
}

func prefixes(s string) string {
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		out = append(out, line[:strings.IndexByte(line, '>')+1])
	}
	return strings.Join(out, " ")
}

func TestLoggerErrors(t *testing.T) {
	for _, tc := range []struct{ format, level, want string }{
		{"text", "info", `obs.NewLogger: format "text": want auto, json or console`},
		{"auto", "verbose", `obs.NewLogger: level "verbose": want debug, info, warn or error`},
		{"json", "", `obs.NewLogger: level "": want debug, info, warn or error`},
	} {
		if _, err := NewLogger(tc.format, tc.level, false); err == nil || err.Error() != tc.want {
			t.Errorf("%q %q: got %v, want %s", tc.format, tc.level, err, tc.want)
		}
	}
	if l, err := NewLogger("auto", "info", false); err != nil || l == nil {
		t.Fatalf("NewLogger: %v", err)
	}
}

func TestRateLimited(t *testing.T) {
	var buf bytes.Buffer
	l, err := newLogger(zapcore.AddSync(&buf), "json", "info", false, false)
	if err != nil {
		t.Fatal(err)
	}
	rl := RateLimited(l, time.Hour)
	for range 100 {
		rl.Warn("camera stale")
		rl.Warn("state stale")
	}
	rl.Error("camera stale") // another level is another entry
	if got := strings.Count(buf.String(), "\n"); got != 3 {
		t.Fatalf("%d lines, want 3:\n%s", got, buf.String())
	}
	// The wrapped logger is unchanged.
	buf.Reset()
	l.Warn("camera stale")
	l.Warn("camera stale")
	if got := strings.Count(buf.String(), "\n"); got != 2 {
		t.Fatalf("original logger: %d lines, want 2", got)
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Fatal("a regular file is a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if IsTerminal(w) {
		t.Fatal("a pipe is a terminal")
	}
}
