package core

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// watchQuiet is how long the model files must be left alone after a change before they
// are loaded: a model and its sidecar are written one after the other, and between the
// two the pair does not verify.
const watchQuiet = 500 * time.Millisecond

// loadResult is a finished background load.
type loadResult struct {
	m   *models
	err error
	why string
}

// reloader loads the models again on Reload (SIGHUP) and, with models.watch, when their
// files change. A load runs on a goroutine of its own so that shutdown never waits for
// one; a set that passes every check goes to d.pending, and the control thread swaps it
// in between two cycles. A set that fails is rejected and the running one stays.
func (d *Daemon) reloader(ctx context.Context, ctl *controller) {
	log := d.log.Named("reload")
	var events <-chan fsnotify.Event
	var werrs <-chan error
	if d.cfg.Models.Watch {
		w, err := d.watch()
		if err != nil {
			log.Error("models.watch: cannot watch the model files; SIGHUP still reloads", zap.Error(err))
		} else {
			defer w.Close()
			events, werrs = w.Events, w.Errors
		}
	}
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	defer quiet.Stop()
	results := make(chan loadResult, 1)
	loading, again := false, ""
	start := func(why string) {
		if loading {
			again = why
			return
		}
		loading = true
		log.Info("loading models", zap.String("why", why))
		go func() {
			m, err := loadModels(d.cfg)
			results <- loadResult{m, err, why}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.reloadReq:
			start("reload requested (SIGHUP)")
		case ev := <-events:
			if ev.Op != fsnotify.Chmod && d.isModelFile(ev.Name) {
				quiet.Reset(watchQuiet)
			}
		case err := <-werrs:
			log.Warn("models.watch", zap.Error(err))
		case <-quiet.C:
			start("model files changed")
		case r := <-results:
			loading = false
			d.reloaded(ctl, r, log)
			if again != "" {
				why := again
				again = ""
				start(why)
			}
		}
	}
}

// reloaded hands a loaded set to the control thread, or rejects it.
func (d *Daemon) reloaded(ctl *controller, r loadResult, log *zap.Logger) {
	cur := ctl.active.Load()
	if p := d.pending.Load(); p != nil {
		cur = p
	}
	err := r.err
	if err == nil {
		err = compatible(cur, r.m)
	}
	switch {
	case err != nil:
		r.m.close()
		d.reloads.WithLabelValues("rejected").Inc()
		log.Warn("models rejected; the running models stay", zap.String("why", r.why), zap.Error(err),
			zap.String("reward_sha256", cur.rewardSHA), zap.String("policy_sha256", cur.policySHA))
	case r.m.rewardSHAs == cur.rewardSHAs && r.m.policySHA == cur.policySHA:
		r.m.close()
		d.reloads.WithLabelValues("unchanged").Inc()
		log.Info("models unchanged", zap.String("why", r.why))
	default:
		d.pending.Swap(r.m).close() // one the loop has not taken yet is never used
		d.reloads.WithLabelValues("swapped").Inc()
		log.Info("models loaded; swapping them in at the next cycle", zap.String("why", r.why),
			zap.String("reward_sha256", r.m.rewardSHA), zap.String("policy_sha256", r.m.policySHA))
	}
}

// watch watches the folders of the two models (a model is usually replaced by a
// rename, which a watch on the file itself would miss).
func (d *Daemon) watch() (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	for _, dir := range []string{filepath.Dir(d.cfg.Models.Reward), filepath.Dir(d.cfg.Models.Policy)} {
		if err := w.Add(dir); err != nil {
			w.Close()
			return nil, err
		}
	}
	return w, nil
}

// isModelFile reports whether path is one of the models' files: MODEL.onnx, its
// sidecar, an ensemble member MODEL.N.onnx and its sidecar, or a temporary file
// onnxio.Save writes them through.
func (d *Daemon) isModelFile(path string) bool {
	for _, m := range []string{d.cfg.Models.Reward, d.cfg.Models.Policy} {
		if filepath.Dir(path) != filepath.Dir(m) {
			continue
		}
		stem := strings.TrimSuffix(filepath.Base(m), filepath.Ext(m))
		base := strings.TrimPrefix(filepath.Base(path), ".")
		if base == stem+filepath.Ext(m) || strings.HasPrefix(base, stem+".") {
			return true
		}
	}
	return false
}
