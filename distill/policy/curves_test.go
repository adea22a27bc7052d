package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteCurves(t *testing.T) {
	dir := t.TempDir()
	curve := []EvalPoint{{Step: 0, SuccessRate: 0, Return: 10}, {Step: 100, SuccessRate: 0.5, Return: 40}}
	runs := []Run{{Name: "a seed 0", Group: "a", Curve: curve}, {Name: "a seed 1", Group: "a", Curve: curve},
		{Name: "b seed 0", Group: "b", Curve: curve[:1]}}
	if err := WriteCurves(dir, "test", runs); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "curves.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1+5 || lines[2] != "a seed 0,a,100,0.5,40,0,0,0" {
		t.Errorf("curves.csv:\n%s", b)
	}
	if st, err := os.Stat(filepath.Join(dir, "curves.png")); err != nil || st.Size() < 1000 {
		t.Errorf("curves.png: %v", err)
	}
}
