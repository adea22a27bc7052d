package episodes

import (
	"math"
	"testing"

	"robodistill/control/episode/episodetest"
	"robodistill/distill/label/labeltest"
)

func TestConformance(t *testing.T) {
	dir := t.TempDir()
	o := episodetest.Options{Episodes: 3, Steps: 12, Size: 16, Seed: 5}
	episodetest.Collection(t, dir, o)
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	labeltest.TestSource(t, s)
	eps := s.Episodes()
	if len(eps) != 3 || eps[0].Task != "fake" || eps[0].Goal != "make the numbers go up" {
		t.Fatalf("episodes %+v", eps)
	}
	fs, _ := s.Frames(1)
	for k, f := range fs {
		v := episodetest.StepValues(o, 1, k)
		if f.Step != k || f.Reward != v.Status.Reward || f.Success != v.Status.Success {
			t.Errorf("step %d: %+v, want reward %v success %v", k, f, v.Status.Reward, v.Status.Success)
		}
		fr, err := s.Frame(f.Hash)
		if err != nil || string(fr.RGB) != string(v.RGB) {
			t.Fatalf("step %d: pixels differ (%v)", k, err)
		}
	}
}

func TestNoStatusIsNoTruth(t *testing.T) {
	dir := t.TempDir()
	episodetest.Collection(t, dir, episodetest.Options{Episodes: 1, Steps: 4, Size: 8, NoStatus: true})
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fs, _ := s.Frames(0)
	for _, f := range fs {
		if !math.IsNaN(f.Reward) || f.HasTruth() {
			t.Fatalf("robot-like episode has reward %v", f.Reward)
		}
	}
}
