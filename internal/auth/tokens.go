// Package auth holds taskwire's bearer tokens: the tokens file, the
// principals it names and the roles they hold. Only the SHA-256 of each
// token is kept in memory; a plaintext token in the file is hashed when
// the file is read and then dropped.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// Role is what a principal may do (SPEC section 4).
type Role string

// The roles of the contract.
const (
	// RoleAdmin may call every method.
	RoleAdmin Role = "admin"
	// RoleWorker is bound to one worker id: it may register, heartbeat and
	// unregister that worker, claim for it, update and complete the tasks
	// assigned to it, and get and list tasks.
	RoleWorker Role = "worker"
	// RoleProducer may create, get and list tasks and follow the events.
	RoleProducer Role = "producer"
)

// Principal is who a token stands for.
type Principal struct {
	// Name is the token's name: it appears in logs, events (createdBy,
	// deletedBy, ...) and rate-limit keys.
	Name string
	Role Role
	// WorkerID is the worker a RoleWorker principal is bound to; empty for
	// the other roles.
	WorkerID string
}

// Tokens is the set of accepted tokens, read from a file. It is safe for
// concurrent use; Reload swaps the whole set at once, so a request sees
// either the old tokens or the new ones.
type Tokens struct {
	path string
	set  atomic.Pointer[tokenSet]
	// reload serializes Reload calls.
	reload sync.Mutex
}

// tokenSet is one parsed tokens file.
type tokenSet struct {
	hashes     [][sha256.Size]byte
	principals []Principal
}

// Load reads the tokens file at path. The error names the file, and the
// entry and field at fault.
func Load(path string) (*Tokens, error) {
	t := &Tokens{path: path}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Reload reads the tokens file again. On any error the tokens in use stay
// as they were and the error says why.
func (t *Tokens) Reload() error {
	t.reload.Lock()
	defer t.reload.Unlock()
	data, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	s, err := parse(data)
	if err != nil {
		return fmt.Errorf("tokens file %s: %w", t.path, err)
	}
	t.set.Store(s)
	return nil
}

// Len is the number of tokens in use.
func (t *Tokens) Len() int { return len(t.set.Load().hashes) }

// Authenticate returns the principal of a bearer token: the value of an
// `Authorization: Bearer TOKEN` header without the scheme, or a token a
// client sent some other way (the first message of a WebSocket). The
// token's hash is compared in constant time with every known hash, so the
// time taken says nothing about how close a guess came.
func (t *Tokens) Authenticate(bearer string) (Principal, bool) {
	if bearer == "" {
		return Principal{}, false
	}
	h := sha256.Sum256([]byte(bearer))
	s := t.set.Load()
	found := -1
	for i := range s.hashes {
		if subtle.ConstantTimeCompare(h[:], s.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Principal{}, false
	}
	return s.principals[found], true
}

// BearerToken returns the token of an Authorization header value
// ("Bearer TOKEN", the scheme in any case), or "" when it holds none.
func BearerToken(header string) string {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
