package labelbench

import (
	"context"
	"testing"
)

func TestRun(t *testing.T) {
	rep, err := Run(context.Background(), Options{Dir: t.TempDir(), Labels: 2000, Requests: 200, ImageSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ScriptedLabels != 2000 || rep.ScriptedLabelsPerSec <= 0 || rep.VLMRequests != 200 || rep.WallUsPerRequest <= 0 || rep.VLMBodyBytes < 1000 {
		t.Fatalf("report %+v", rep)
	}
	t.Logf("%+v", rep)
}
