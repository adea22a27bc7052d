// Package plots writes the figures of robodistill's reports (the reward "milestones"
// figure, learning curves) as PNG files: gonum/plot panels stacked in one column, sharing
// their x axes' alignment.
package plots

import (
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Width is the side of a figure: panels share its height.
const Width = 8 * vg.Inch

// SaveColumn draws panels one above the other, each with a grid on white, into a
// Width×Width PNG at path.
func SaveColumn(path string, panels ...*plot.Plot) error {
	rows := make([][]*plot.Plot, len(panels))
	for i, p := range panels {
		p.Add(plotter.NewGrid())
		p.BackgroundColor = color.White
		rows[i] = []*plot.Plot{p}
	}
	img := vgimg.New(Width, Width)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4),
		PadLeft: vg.Points(4), PadRight: vg.Points(8), PadY: vg.Points(10)}
	canvases := plot.Align(rows, tiles, draw.New(img))
	for i, p := range panels {
		p.Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
