// Package cli is the robodistill command line: one cobra tree whose commands build their
// components from flags, run them under the caller's context and print a human report or,
// with --json, a one-line JSON summary on stdout.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// app carries what every command shares; it is built once in Main and passed down.
type app struct {
	stdout, stderr io.Writer
	log            *zap.Logger
	json           bool
	assets         string
	logLevel       string
}

// Main runs the command line with args and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, log: zap.NewNop()}
	root := a.root()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	_ = a.log.Sync()
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "robodistill: interrupted")
		return 130
	default:
		fmt.Fprintf(stderr, "robodistill: %v\n", err)
		return 1
	}
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:           "robodistill",
		Short:         "Distil a VLM's preferences into a reward model and a robot policy",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setupLogger()
		},
	}
	pf := root.PersistentFlags()
	pf.BoolVar(&a.json, "json", false, "print a one-line JSON summary on stdout")
	pf.StringVar(&a.assets, "assets", "", "MetaWorld assets folder (default $ROBODISTILL_METAWORLD_ASSETS, then ../shared/metaworld/assets or .assets/metaworld)")
	pf.StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(a.simCmd(), a.benchCmd(), a.demoCmd(), a.collectCmd(), a.labelCmd(), a.rewardCmd(), a.policyCmd(), a.modelCmd(), a.evalCmd())
	return root
}

func (a *app) setupLogger() error {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(a.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	cfg := zap.NewDevelopmentEncoderConfig()
	cfg.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(cfg), zapcore.AddSync(a.stderr), lvl)
	a.log = zap.New(core)
	return nil
}

// summary prints v as one JSON line when --json is set.
func (a *app) summary(v any) error {
	if !a.json {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "%s\n", b)
	return err
}

// human prints a report line unless --json is set (then stdout holds only the JSON).
func (a *app) human(format string, args ...any) {
	if a.json {
		return
	}
	fmt.Fprintf(a.stdout, format, args...)
}
