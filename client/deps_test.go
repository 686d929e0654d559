package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies: the SDK compiles only the standard library and the
// root package of wire types: no internal package, no SQLite, no Redis.
func TestDependencies(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	if !strings.Contains(string(out), "github.com/taskwire/taskwire\n") {
		t.Fatalf("go list printed %q, without the root package", out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "github.com/taskwire/taskwire" && dep != "github.com/taskwire/taskwire/client" {
			t.Errorf("client depends on %s", dep)
		}
	}
}
