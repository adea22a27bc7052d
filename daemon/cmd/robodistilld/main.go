// Command robodistilld is the on-robot daemon: it runs the distilled reward and the
// policy at a fixed rate over ROS, behind a safety filter, and records transitions.
//
//	robodistilld --config /etc/robodistill/daemon.yaml [--set key=value]... [--log-format auto|json|console] [--log-level debug|info|warn|error]
//
// SIGTERM or SIGINT stop it (the arm first, then the logs, within 2 s); SIGHUP reloads
// the models. Exit codes: 0 stopped by a signal, 1 failed while starting or running,
// 2 bad command line or configuration, 3 a model refused at start. See docs/daemon.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"robodistill/daemon/config"
	"robodistill/daemon/core"
	"robodistill/daemon/obs"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
	exitModel  = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	code := run(ctx, os.Args[1:], os.Stderr, hup)
	stop()
	os.Exit(code)
}

// run is the whole program: flags, configuration, logger, the daemon until ctx ends.
func run(ctx context.Context, args []string, stderr io.Writer, hup <-chan os.Signal) int {
	fs := pflag.NewFlagSet("robodistilld", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/robodistill/daemon.yaml", "configuration file (YAML, docs/daemon-config.md)")
	sets := fs.StringArray("set", nil, "override a configuration key, e.g. --set loop.rate_hz=50 (repeatable; later wins)")
	format := fs.String("log-format", "", "log format: auto, json or console (default: the configuration's logging.format)")
	level := fs.String("log-level", "", "log level: debug, info, warn or error (default: the configuration's logging.level)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "robodistilld runs the distilled reward and the policy over ROS.\n\n"+
			"Usage: robodistilld --config /etc/robodistill/daemon.yaml [--set key=value]...\n\n%s\n"+
			"Signals: SIGTERM/SIGINT stop (arm first, then logs); SIGHUP reloads the models.\n"+
			"Exit codes: 0 stopped by a signal, 1 failed while starting or running, 2 bad command line\n"+
			"or configuration, 3 a model refused at start.\n", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "robodistilld: %v (see --help)\n", err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "robodistilld: unexpected arguments %q (every setting is a flag or in the configuration)\n", fs.Args())
		return exitUsage
	}
	overrides := *sets
	if *format != "" {
		overrides = append(overrides, "logging.format="+*format)
	}
	if *level != "" {
		overrides = append(overrides, "logging.level="+*level)
	}
	cfg, err := config.LoadWithOverrides(*path, overrides)
	if err != nil {
		fmt.Fprintf(stderr, "robodistilld: %v\n", err)
		return exitUsage
	}
	log, err := obs.NewLogger(cfg.Logging.Format, cfg.Logging.Level, obs.IsTerminal(os.Stderr))
	if err != nil {
		fmt.Fprintf(stderr, "robodistilld: %v\n", err)
		return exitUsage
	}
	defer log.Sync()
	d, err := core.New(cfg, log)
	if err != nil {
		log.Error("bad configuration", zap.Error(err))
		return exitUsage
	}
	go func() {
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: reloading the models")
				d.Reload()
			case <-ctx.Done():
				return
			}
		}
	}()
	log.Info("starting", zap.String("config", *path), zap.Strings("set", overrides))
	if err := d.Run(ctx); err != nil {
		log.Error("robodistilld failed", zap.Error(err))
		if errors.Is(err, core.ErrModel) {
			return exitModel
		}
		return exitFailed
	}
	return exitOK
}
