package auth

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the tokens file parser: it never
// panics; a file it accepts authenticates each of its plaintext tokens as
// its own entry; an error never quotes a token of the file.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`[{"name":"a","role":"admin","token":"` + adminToken + `"}]`,
		`[{"name":"w","role":"worker","workerId":"w1","sha256":"` + Hash(workerToken) + `"}]`,
		`[{"name":"a","role":"producer","token":"` + adminToken + `"},{"name":"b","role":"admin","token":"` + workerToken + `"}]`,
		`[]`, `[{}]`, `{"name":"a"}`, `[{"name":"a","role":"admin","token":5}]`, `[null]`, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parse(data)
		var entries []Entry
		_ = json.Unmarshal(data, &entries)
		if err != nil {
			for _, e := range entries {
				if len(e.Token) >= MinTokenLength && strings.Contains(err.Error(), e.Token) && !quotedElsewhere(entries, e.Token) {
					t.Fatalf("error %q quotes a token", err)
				}
			}
			return
		}
		tokens := &Tokens{}
		tokens.set.Store(s)
		for _, e := range entries {
			if e.Token == "" {
				continue
			}
			p, ok := tokens.Authenticate(e.Token)
			if !ok || p != (Principal{Name: e.Name, Role: e.Role, WorkerID: e.WorkerID}) {
				t.Fatalf("token of %q authenticates as %+v, %v", e.Name, p, ok)
			}
		}
	})
}

// quotedElsewhere reports whether token is part of a field an error may
// quote (a name, role or worker id).
func quotedElsewhere(entries []Entry, token string) bool {
	for _, e := range entries {
		if strings.Contains(e.Name, token) || strings.Contains(string(e.Role), token) || strings.Contains(e.WorkerID, token) {
			return true
		}
	}
	return false
}
