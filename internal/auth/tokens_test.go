package auth

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	adminToken  = "admin-token-0123456789"
	workerToken = "worker-token-0123456789"
)

// writeFile writes a tokens file for one test and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	tokens, err := Load(writeFile(t, `[
		{"name": "ops", "role": "admin", "token": "`+adminToken+`"},
		{"name": "w1", "role": "worker", "workerId": "w1", "sha256": "`+Hash(workerToken)+`"},
		{"name": "shop", "role": "producer", "token": "producer-token-0123456789"}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		bearer string
		want   Principal
		ok     bool
	}{
		{adminToken, Principal{Name: "ops", Role: RoleAdmin}, true},
		// A token given by its hash in the file.
		{workerToken, Principal{Name: "w1", Role: RoleWorker, WorkerID: "w1"}, true},
		{"producer-token-0123456789", Principal{Name: "shop", Role: RoleProducer}, true},
		// Unknown, empty, a prefix, the hash itself.
		{"nope", Principal{}, false},
		{"", Principal{}, false},
		{adminToken[:10], Principal{}, false},
		{Hash(workerToken), Principal{}, false},
	}
	for _, tt := range tests {
		got, ok := tokens.Authenticate(tt.bearer)
		if ok != tt.ok || got != tt.want {
			t.Errorf("Authenticate(%q) = %+v, %v; want %+v, %v", tt.bearer, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	hash := Hash(adminToken)
	tests := []struct {
		name, file string
		// want is a part of the error; every error must also leave out the
		// plaintext tokens of the file.
		want string
	}{
		{"truncated", `[{"name":`, "want a JSON array"},
		{"not json", `[{"name": x}]`, "invalid JSON at byte"},
		{"not an array", `{"name": "a"}`, "want a JSON array"},
		{"empty", `[]`, "no tokens"},
		{"trailing data", `[{"name":"a","role":"admin","token":"` + adminToken + `"}] []`, "after the JSON array"},
		{"unknown field", `[{"name":"a","role":"admin","tokn":"` + adminToken + `"}]`, `unknown field "tokn"`},
		{"wrong type", `[{"name":"a","role":"admin","token":5}]`, `field "token"`},
		{"no name", `[{"role":"admin","token":"` + adminToken + `"}]`, `entry 1: name: required`},
		{"bad name", `[{"name":"a b","role":"admin","token":"` + adminToken + `"}]`, `entry 1: name:`},
		{"unknown role", `[{"name":"a","role":"root","token":"` + adminToken + `"}]`, `entry 1: role: want one of admin, worker, producer`},
		// A token pasted as the name by mistake is not quoted either.
		{"token as name", `[{"name":"` + workerToken + `","role":"root","token":"` + adminToken + `"}]`, `entry 1: role:`},
		{"worker without workerId", `[{"name":"w","role":"worker","token":"` + adminToken + `"}]`, `entry 1: workerId: required for role worker`},
		{"workerId on admin", `[{"name":"a","role":"admin","workerId":"w1","token":"` + adminToken + `"}]`, "workerId: only role worker"},
		{"bad workerId", `[{"name":"w","role":"worker","workerId":"w 1","token":"` + adminToken + `"}]`, "workerId: 1 to 128"},
		{"both", `[{"name":"a","role":"admin","token":"` + adminToken + `","sha256":"` + hash + `"}]`, "token and sha256: give one"},
		{"neither", `[{"name":"a","role":"admin"}]`, "token or sha256: one of them is required"},
		{"short token", `[{"name":"a","role":"admin","token":"short"}]`, "token: at least 16"},
		{"bad hash", `[{"name":"a","role":"admin","sha256":"abc"}]`, "sha256: want 64 lowercase hex"},
		{"duplicate name", `[{"name":"a","role":"admin","token":"` + adminToken + `"},
			{"name":"a","role":"producer","token":"` + workerToken + `"}]`, `entry 2: name: used by entry 1`},
		// The same token once in plaintext and once as its hash.
		{"duplicate hash", `[{"name":"a","role":"admin","token":"` + adminToken + `"},
			{"name":"b","role":"producer","sha256":"` + hash + `"}]`, `entry 2: token: the same token as entry 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(writeFile(t, tt.file))
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			for _, secret := range []string{adminToken, workerToken} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a token", err)
				}
			}
		})
	}
}

func TestReload(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `[{"name":"a","role":"admin","token":"`+adminToken+`"}]`)
	tokens, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// A bad file keeps the tokens in use.
	if err := os.WriteFile(path, []byte(`[{"name":"a","role":"boss","token":"`+workerToken+`"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tokens.Reload(); err == nil || !strings.Contains(err.Error(), "role") {
		t.Fatalf("Reload of a bad file: %v, want an error naming the role", err)
	}
	if _, ok := tokens.Authenticate(adminToken); !ok {
		t.Error("after a failed reload the old token is refused")
	}
	// A good file replaces them.
	if err := os.WriteFile(path, []byte(`[{"name":"b","role":"producer","token":"`+workerToken+`"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tokens.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := tokens.Authenticate(adminToken); ok {
		t.Error("a token removed from the file is still accepted")
	}
	got, ok := tokens.Authenticate(workerToken)
	if diff := cmp.Diff(Principal{Name: "b", Role: RoleProducer}, got); !ok || diff != "" {
		t.Errorf("new token: ok %v (-want +got):\n%s", ok, diff)
	}
}

// TestReloadConcurrent authenticates while the file is reloaded (run with
// -race): every call sees one whole file or the other.
// Tokens given inline work as a file's do, and Reload keeps them: there
// is nothing to read again.
func TestParse(t *testing.T) {
	t.Parallel()
	tokens, err := Parse([]byte(`[{"name":"a","role":"admin","token":"` + adminToken + `"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if err := tokens.Reload(); err != nil {
		t.Fatalf("Reload of inline tokens: %v", err)
	}
	if p, ok := tokens.Authenticate(adminToken); !ok || p.Name != "a" {
		t.Errorf("inline token: %+v, %v", p, ok)
	}
	_, err = Parse([]byte(`[{"name":"a","role":"` + workerToken + `","token":"` + adminToken + `"}]`))
	if err == nil || strings.Contains(err.Error(), workerToken) || strings.Contains(err.Error(), adminToken) {
		t.Errorf("Parse of a bad role: %v, want an error quoting no value", err)
	}
}

// OnReload's functions run after each reload that succeeds, once the new
// tokens are in use, and a fingerprint is looked up in those.
func TestOnReload(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `[{"name":"a","role":"admin","token":"`+adminToken+`"}]`)
	tokens, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var seen []bool // whether the admin token was still known, per call
	tokens.OnReload(func() {
		_, ok := tokens.Lookup(FingerprintOf(adminToken))
		seen = append(seen, ok)
	})
	for _, content := range []string{
		`[{"name":"b","role":"producer","token":"` + workerToken + `"}]`,
		`[{"name":"b"`, // does not load: no call
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_ = tokens.Reload()
	}
	if diff := cmp.Diff([]bool{false}, seen); diff != "" {
		t.Errorf("OnReload calls (-want +got):\n%s", diff)
	}
}

func TestReloadConcurrent(t *testing.T) {
	t.Parallel()
	fileA := `[{"name":"a","role":"admin","token":"` + adminToken + `"}]`
	fileB := `[{"name":"a","role":"admin","token":"` + adminToken + `"},{"name":"b","role":"producer","token":"` + workerToken + `"}]`
	path := writeFile(t, fileA)
	tokens, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if p, ok := tokens.Authenticate(adminToken); !ok || p.Name != "a" {
					t.Errorf("admin token: %+v %v", p, ok)
					return
				}
			}
		})
	}
	for i := range 200 {
		content := fileA
		if i%2 == 1 {
			content = fileB
		}
		if err := os.WriteFile(path+".new", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
		if err := tokens.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]string{
		"Bearer abc": "abc", "bearer abc": "abc", "Bearer  abc ": "abc",
		"": "", "Basic abc": "", "Bearer": "", "abc": "",
	} {
		if got := BearerToken(header); got != want {
			t.Errorf("BearerToken(%q) = %q, want %q", header, got, want)
		}
	}
}

func TestNewToken(t *testing.T) {
	t.Parallel()
	a, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewToken()
	if a == b || len(a) < 3+43 {
		t.Errorf("tokens %q and %q: want two different tokens of 256 bits", a, b)
	}
	if _, err := parse([]byte(`[{"name":"n","role":"admin","token":"` + a + `"}]`)); err != nil {
		t.Errorf("a new token is refused by the file: %v", err)
	}
}
