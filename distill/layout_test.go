package distill

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"robodistill/control/testbin"
	"strings"
	"testing"
)

type pkg struct {
	ImportPath string
	Dir        string
	Imports    []string
	Name       string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "robodistill/...")
	cmd.Dir = ".."
	// The go command that runs this test, not whichever is first on PATH.
	gobin, err := testbin.GoCommand()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	cmd.Path = gobin
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 5 {
		t.Fatalf("only %d packages listed", len(pkgs))
	}
	return pkgs
}

// part is the top-level folder a package belongs to.
func part(importPath string) string {
	rest := strings.TrimPrefix(importPath, "robodistill/")
	p, _, _ := strings.Cut(rest, "/")
	return p
}

// allowed lists, for each part, the other parts it may import (shared/ARCHITECTURE.md).
var allowed = map[string][]string{
	"sim":      {"control", "vision"},
	"vision":   {},
	"control":  {"vision", "firmware/protocol"},
	"distill":  {"control", "vision", "sim"},
	"daemon":   {"control", "vision", "firmware/protocol"},
	"firmware": {},
	"systemd":  {}, // the unit files' tests (systemd-analyze)
}

func TestImportRules(t *testing.T) {
	for _, p := range listPackages(t) {
		from := part(p.ImportPath)
		rules, ok := allowed[from]
		if !ok {
			t.Errorf("package %s is outside the parts of the architecture (%v)", p.ImportPath, keys(allowed))
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, "robodistill/") {
				continue
			}
			to := part(imp)
			if to == from {
				continue
			}
			okImp := false
			for _, r := range rules {
				if imp == "robodistill/"+r || strings.HasPrefix(imp, "robodistill/"+r+"/") {
					okImp = true
				}
			}
			if !okImp {
				t.Errorf("%s imports %s: %s may import only %v", p.ImportPath, imp, from, rules)
			}
		}
	}
}

func TestPackageDocs(t *testing.T) {
	for _, p := range listPackages(t) {
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, p.Dir, func(fi os.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		documented := false
		for _, ap := range pkgs {
			for _, f := range ap.Files {
				if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
					documented = true
				}
			}
		}
		if !documented {
			t.Errorf("package %s has no doc comment saying what it is for", p.ImportPath)
		}
	}
}

func keys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
