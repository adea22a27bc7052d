package policy

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestReplay(t *testing.T) {
	r, err := NewReplay(3, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewReplay(0, 2, 1); err == nil {
		t.Error("capacity 0 accepted")
	}
	add := func(k float32) {
		r.Add([]float32{k, -k}, []float32{k / 10}, k*100, []float32{k + 1, -k - 1}, k == 4)
	}
	for k := float32(1); k <= 5; k++ {
		add(k)
	}
	if r.Len() != 3 || r.Cap() != 3 {
		t.Fatalf("len %d cap %d, want 3 3", r.Len(), r.Cap())
	}
	// 4 and 5 replaced 1 and 2: slots hold 4, 5, 3.
	if want := []float32{4, -4, 5, -5, 3, -3}; !slices.Equal(r.obs, want) {
		t.Errorf("obs %v, want %v", r.obs, want)
	}
	if want := []float32{400, 500, 300}; !slices.Equal(r.rew, want) {
		t.Errorf("rewards %v, want %v", r.rew, want)
	}
	if want := []float32{1, 0, 0}; !slices.Equal(r.done, want) {
		t.Errorf("terminal flags %v, want %v", r.done, want)
	}
	if r.Bytes() != 4*(2*3*2+3*1+2*3) {
		t.Errorf("bytes %d", r.Bytes())
	}

	// Sampling: seeded, rows consistent with one stored transition, every slot reached.
	b1, b2 := newBatch(64, 2, 1), newBatch(64, 2, 1)
	r.Sample(rand.New(rand.NewPCG(1, 2)), &b1)
	r.Sample(rand.New(rand.NewPCG(1, 2)), &b2)
	if !slices.Equal(b1.Obs, b2.Obs) || !slices.Equal(b1.Rew, b2.Rew) {
		t.Error("same seed, different samples")
	}
	seen := map[float32]bool{}
	for i := 0; i < b1.N; i++ {
		k := b1.Obs[2*i]
		seen[k] = true
		if b1.Obs[2*i+1] != -k || b1.Act[i] != k/10 || b1.Rew[i] != k*100 || b1.Next[2*i] != k+1 || (b1.Done[i] == 1) != (k == 4) {
			t.Fatalf("row %d mixes transitions: obs %v act %v rew %v next %v done %v", i,
				b1.Obs[2*i:2*i+2], b1.Act[i], b1.Rew[i], b1.Next[2*i:2*i+2], b1.Done[i])
		}
	}
	if len(seen) != 3 || seen[1] || seen[2] {
		t.Errorf("sampled %v, want exactly 3, 4 and 5", seen)
	}

	// Before it is full, only the filled part is sampled.
	r2, _ := NewReplay(10, 2, 1)
	r2.Add([]float32{7, 7}, []float32{0}, 1, []float32{0, 0}, false)
	r2.Sample(rand.New(rand.NewPCG(3, 3)), &b1)
	for i := 0; i < b1.N; i++ {
		if b1.Obs[2*i] != 7 {
			t.Fatalf("sampled an empty slot")
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Sample on an empty buffer did not panic")
		}
	}()
	r3, _ := NewReplay(2, 2, 1)
	r3.Sample(rand.New(rand.NewPCG(3, 3)), &b1)
}

// TestReplayPinned: pinned demonstrations survive the ring's wrap, and a batch draws its
// first round(ratio·N) rows from them and the rest from the others.
func TestReplayPinned(t *testing.T) {
	r, err := NewReplay(5, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	add := func(k float32) { r.Add([]float32{k}, []float32{0}, k, []float32{k}, false) }
	add(-1)
	add(-2)
	r.Pin(0.25)
	if r.Pinned() != 2 {
		t.Fatalf("pinned %d, want 2", r.Pinned())
	}
	b := newBatch(8, 1, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	r.Sample(rng, &b) // only pinned transitions so far: every row from them
	for _, v := range b.Rew {
		if v >= 0 {
			t.Fatalf("rewards %v: drew from an empty part", b.Rew)
		}
	}
	for k := float32(1); k <= 7; k++ {
		add(k)
	}
	// Slots 2..4 held 1, 2, 3, then 4..7 replaced the oldest of them: 7, 5, 6.
	if want := []float32{-1, -2, 7, 5, 6}; !slices.Equal(r.rew, want) {
		t.Fatalf("rewards %v, want %v", r.rew, want)
	}
	if r.Pos() != 3 {
		t.Errorf("position %d, want 3", r.Pos())
	}
	for range 50 {
		r.Sample(rng, &b)
		for k, v := range b.Rew {
			if pinned := k < 2; pinned != (v < 0) {
				t.Fatalf("row %d has reward %v: rows 0–1 must be pinned ones, the rest not", k, v)
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Pin on a full buffer did not panic")
		}
	}()
	r.Pin(0.5)
}
