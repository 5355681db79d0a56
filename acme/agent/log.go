package agent

import (
	"fmt"
	"log/slog"
	"strings"

	legolog "github.com/go-acme/lego/v4/log"
)

type logger struct{ *slog.Logger }

// RouteLegoLogs sends the lego library's log lines (a process-wide
// setting of lego) to l at debug level, so they do not clutter stderr.
func RouteLegoLogs(l *slog.Logger) { legolog.Logger = legoLogger{l} }

type legoLogger struct{ l *slog.Logger }

func (g legoLogger) msg(s string) { g.l.Debug(strings.TrimSpace(s), "source", "lego") }

func (g legoLogger) Fatal(args ...any)                 { g.msg(fmt.Sprint(args...)) }
func (g legoLogger) Fatalln(args ...any)               { g.msg(fmt.Sprintln(args...)) }
func (g legoLogger) Fatalf(format string, args ...any) { g.msg(fmt.Sprintf(format, args...)) }
func (g legoLogger) Print(args ...any)                 { g.msg(fmt.Sprint(args...)) }
func (g legoLogger) Println(args ...any)               { g.msg(fmt.Sprintln(args...)) }
func (g legoLogger) Printf(format string, args ...any) { g.msg(fmt.Sprintf(format, args...)) }
