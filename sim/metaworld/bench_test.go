package metaworld

import (
	"strconv"
	"testing"
)

func benchStep(b *testing.B, opts Options) {
	e := newEnv(b, "drawer-open", opts)
	o, err := e.Reset(0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var end bool
		if o, _, _, end, err = e.Step(e.Task().Scripted(&o)); err != nil {
			b.Fatal(err)
		}
		if end {
			b.StopTimer()
			o, _ = e.Reset(uint64(i))
			b.StartTimer()
		}
	}
}

func BenchmarkStep80(b *testing.B)               { benchStep(b, Options{}) }
func BenchmarkStep50(b *testing.B)               { benchStep(b, Options{Rate: Rate50}) }
func BenchmarkStep80KinematicsOnly(b *testing.B) { benchStep(b, Options{KinematicsOnly: true}) }

func BenchmarkRender(b *testing.B) {
	for _, size := range []int{64, 224} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			e := newEnv(b, "drawer-open", Options{})
			if _, err := e.Reset(0); err != nil {
				b.Fatal(err)
			}
			cam, err := e.Camera("corner")
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, size*size*3)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := e.RenderID(cam, size, size, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
