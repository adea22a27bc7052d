package policy

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"robodistill/distill/plots"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Run is one training run's learning curve, named for the figure's legend.
type Run struct {
	Name   string      // e.g. "distilled seed 0"
	Group  string      // runs of one group share a colour (e.g. "distilled", "ground-truth")
	Curve  []EvalPoint // in step order
	Reward string
}

// WriteCurves writes curves.csv (one row per run and evaluation) and curves.png (success
// rate and simulator return against environment steps, one panel each; runs of a group
// share a colour, seeds are told apart by dashes) into dir.
func WriteCurves(dir, title string, runs []Run) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "curves.csv"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "run,group,step,success_rate,return,used_return,train_success_rate,train_return")
	num := func(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }
	for _, r := range runs {
		for _, p := range r.Curve {
			fmt.Fprintf(w, "%s,%s,%d,%s,%s,%s,%s,%s\n", r.Name, r.Group, p.Step, num(p.SuccessRate), num(p.Return),
				num(p.UsedReturn), num(p.TrainSuccessRate), num(p.TrainReturn))
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}

	succ, ret := plot.New(), plot.New()
	succ.Title.Text = title
	succ.Y.Label.Text = "evaluation success rate"
	succ.Y.Min, succ.Y.Max = 0, 1.02
	ret.Y.Label.Text = "evaluation return (simulator reward)"
	ret.X.Label.Text = "environment steps"
	groups := map[string]int{}
	seen := map[string]int{}
	for _, r := range runs {
		g, ok := groups[r.Group]
		if !ok {
			g = len(groups)
			groups[r.Group] = g
		}
		k := seen[r.Group]
		seen[r.Group]++
		for _, panel := range []struct {
			p *plot.Plot
			y func(EvalPoint) float64
		}{{succ, func(e EvalPoint) float64 { return e.SuccessRate }}, {ret, func(e EvalPoint) float64 { return e.Return }}} {
			xys := make(plotter.XYs, len(r.Curve))
			for i, e := range r.Curve {
				xys[i] = plotter.XY{X: float64(e.Step), Y: panel.y(e)}
			}
			l, err := plotter.NewLine(xys)
			if err != nil {
				return err
			}
			l.Color = plotutil.Color(g)
			l.Width = vg.Points(1.5)
			if k > 0 {
				l.Dashes = plotutil.Dashes(k)
			}
			panel.p.Add(l)
			if panel.p == succ {
				succ.Legend.Add(r.Name, l)
			}
		}
	}
	succ.Legend.Top, succ.Legend.Left = true, true
	return plots.SaveColumn(filepath.Join(dir, "curves.png"), succ, ret)
}
