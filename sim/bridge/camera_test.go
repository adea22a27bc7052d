package bridge

import (
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"

	"robodistill/control/rosnode/rosnodetest"
	"robodistill/sim/metaworld"
)

// A 30 Hz camera beside a 50 Hz arm: images on their own schedule, states at the control
// rate. The check is the ratio of counts over a few seconds, which does not depend on how
// loaded the machine is; the absolute rates are only logged.
func TestCameraRate(t *testing.T) {
	m := rosnodetest.New(t)
	b := startBridge(t, m, Config{Task: mustTask(t, "reach"), Env: metaworld.Options{Rate: 50, MaxSteps: 100000},
		Camera: "corner", Size: 32, CameraRate: 30, Seed: 2})
	tp := b.Topics()
	p := peer(t, m, "camera_rate_checker")
	var img latest[sensor_msgs.Image]
	var pose latest[geometry_msgs.PoseStamped]
	subscribe(t, p, tp.Image, &img)
	subscribe(t, p, tp.EEPose, &pose)
	eventually(t, 5*time.Second, "image and pose received", func() bool {
		_, ni := img.get()
		_, np := pose.get()
		return ni > 0 && np > 0
	})

	_, i0 := img.get()
	_, p0 := pose.get()
	st0 := b.Stats()
	first, _ := img.get()
	const span = 4 * time.Second
	time.Sleep(span)
	last, i1 := img.get()
	_, p1 := pose.get()
	st1 := b.Stats()

	images, states := i1-i0, p1-p0
	if images == 0 || states == 0 {
		t.Fatalf("%d images and %d states received in %v", images, states, span)
	}
	ratio := float64(images) / float64(states)
	sent := float64(st1.Images-st0.Images) / float64(st1.Published-st0.Published)
	t.Logf("received %d images and %d states in %v (%.1f Hz and %.1f Hz): ratio %.3f, published ratio %.3f (want 0.6); "+
		"image render+publish p50 %v p99 %v, step+publish p50 %v p99 %v, overruns %d, camera frames dropped %d",
		images, states, span, float64(images)/span.Seconds(), float64(states)/span.Seconds(), ratio, sent,
		st1.ImageWorkP50, st1.ImageWorkP99, st1.WorkP50, st1.WorkP99, st1.Overruns, st1.CameraSkipped)
	for what, r := range map[string]float64{"received": ratio, "published": sent} {
		if r < 0.5 || r > 0.7 {
			t.Errorf("%s images per state %.3f, want 30/50 = 0.6 (± 0.1)", what, r)
		}
	}
	// Images carry their own sequence numbers and stamps, increasing.
	if last.Header.Seq <= first.Header.Seq || !last.Header.Stamp.After(first.Header.Stamp) {
		t.Errorf("image header went from seq %d at %v to seq %d at %v", first.Header.Seq, first.Header.Stamp, last.Header.Seq, last.Header.Stamp)
	}
	if last.Width != 32 || last.Height != 32 || last.Encoding != "rgb8" || len(last.Data) != 32*32*3 {
		t.Errorf("image %dx%d %s with %d bytes, want 32x32 rgb8", last.Width, last.Height, last.Encoding, len(last.Data))
	}
}
