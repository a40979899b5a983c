package main

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

// isTestPackage reports whether a package of this module is test
// infrastructure: named *test (storagetest, fxatest, internal/dbtest…; but
// loadtest is the load generator, a command of the binary), or built on
// package testing (internal/firefox…).
func isTestPackage(importPath string, imports []string) bool {
	if name := path.Base(importPath); strings.HasSuffix(name, "test") && name != "loadtest" {
		return true
	}
	return slices.ContainsFunc(imports, func(i string) bool {
		return i == "testing" || strings.HasPrefix(i, "testing/") || i == "net/http/httptest"
	})
}

// TestNoTestPackageInProduction keeps test infrastructure (fakes, fixtures,
// conformance suites) out of the binary: no production package of the
// module depends on a test package.
func TestNoTestPackageInProduction(t *testing.T) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Module,Imports,Deps", "github.com/weave-sync/weave/...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath string
		Imports    []string
		Deps       []string
	}
	var prod []pkg
	var tests []string
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if isTestPackage(p.ImportPath, p.Imports) {
			tests = append(tests, p.ImportPath)
		} else {
			prod = append(prod, p)
		}
	}
	// The check is only as good as its inputs: the module has both kinds.
	for _, want := range []string{"github.com/weave-sync/weave/storagetest", "github.com/weave-sync/weave/internal/firefox"} {
		if !slices.Contains(tests, want) {
			t.Fatalf("%s not classified as a test package: %v", want, tests)
		}
	}
	bin := slices.IndexFunc(prod, func(p pkg) bool { return p.ImportPath == "github.com/weave-sync/weave/cmd/weave" })
	if bin < 0 || !slices.Contains(prod[bin].Deps, "github.com/weave-sync/weave/sqlstore") {
		t.Fatal("cmd/weave or its dependencies not listed")
	}
	for _, p := range prod {
		for _, d := range p.Deps {
			if slices.Contains(tests, d) {
				t.Errorf("%s depends on the test package %s", p.ImportPath, d)
			}
		}
	}
}
