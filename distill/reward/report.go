package reward

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"robodistill/distill/plots"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Report files, in Summary.Report.
const (
	ReportJSON    = "report.json"
	RewardsCSV    = "rewards.csv"
	HistoryCSV    = "history.csv"
	MilestonesPNG = "milestones.png"
	milestoneEach = 3 // successful and failed episodes in the figure, each
)

func writeReport(s *Summary, d *Dataset, sc *Scores) error {
	dir := s.Report
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ReportJSON), append(j, '\n'), 0o644); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, RewardsCSV), "episode,step,sim_reward,success,reward,reward_std", func(w *bufio.Writer) {
		for _, traj := range d.HeldOut {
			for _, f := range traj {
				fi := d.Frames[f]
				fmt.Fprintf(w, "%s,%d,%s,%t,%s,%s\n", d.Episodes[fi.Episode].ID, fi.Step, num(fi.Reward), fi.Success, num(sc.Mean[f]), num(sc.Std[f]))
			}
		}
	}); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, HistoryCSV), "member,epoch,train_loss,val_loss,val_acc,seconds", func(w *bufio.Writer) {
		for _, m := range s.Members {
			for _, h := range m.History {
				fmt.Fprintf(w, "%d,%d,%s,%s,%s,%s\n", m.Member, h.Epoch, num(h.TrainLoss), num(h.ValLoss), num(h.ValAcc), num(h.Seconds))
			}
		}
	}); err != nil {
		return err
	}
	return plotMilestones(filepath.Join(dir, MilestonesPNG), d, sc)
}

func num(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }

func writeCSV(path, header string, rows func(*bufio.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, header)
	rows(w)
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// plotMilestones draws the paper's "milestones" figure: the distilled reward (top) and
// the simulator's reward (bottom) along a few successful and failed held-out episodes,
// one colour per episode, failed episodes dashed.
func plotMilestones(path string, d *Dataset, sc *Scores) error {
	var succ, fail []int
	for i, traj := range d.HeldOut {
		ok := false
		for _, f := range traj {
			ok = ok || d.Frames[f].Success
		}
		if ok && len(succ) < milestoneEach {
			succ = append(succ, i)
		} else if !ok && len(fail) < milestoneEach {
			fail = append(fail, i)
		}
	}
	top, bottom := plot.New(), plot.New()
	top.Title.Text = "Distilled reward along held-out episodes (ensemble mean, normalised)"
	top.Y.Label.Text = "distilled reward"
	bottom.Title.Text = "Simulator reward (MetaWorld v2)"
	bottom.Y.Label.Text = "simulator reward"
	bottom.X.Label.Text = "step"
	for k, i := range append(succ, fail...) {
		traj := d.HeldOut[i]
		learned, truth := make(plotter.XYs, len(traj)), make(plotter.XYs, 0, len(traj))
		for s, f := range traj {
			learned[s] = plotter.XY{X: float64(s), Y: sc.Mean[f]}
			if r := d.Frames[f].Reward; !math.IsNaN(r) {
				truth = append(truth, plotter.XY{X: float64(s), Y: r})
			}
		}
		name := d.Episodes[d.Frames[traj[0]].Episode].ID
		if k < len(succ) {
			name += " (success)"
		} else {
			name += " (failure)"
		}
		for _, p := range []struct {
			pl  *plot.Plot
			xys plotter.XYs
		}{{top, learned}, {bottom, truth}} {
			if len(p.xys) == 0 {
				continue
			}
			l, err := plotter.NewLine(p.xys)
			if err != nil {
				return err
			}
			l.Color = plotutil.Color(k)
			l.Width = vg.Points(1.5)
			if k >= len(succ) {
				l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			}
			p.pl.Add(l)
			if p.pl == top {
				top.Legend.Add(name, l)
			}
		}
	}
	top.Legend.Top = true
	top.Legend.Left = true
	return plots.SaveColumn(path, top, bottom)
}
