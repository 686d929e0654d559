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

// Tokens is the set of accepted tokens, read from a file or given
// inline. It is safe for concurrent use; Reload swaps the whole set at
// once, so a request sees either the old tokens or the new ones.
type Tokens struct {
	// path is the tokens file; empty for tokens given inline (Parse).
	path string
	set  atomic.Pointer[tokenSet]
	// reload serializes Reload calls and guards onReload.
	reload   sync.Mutex
	onReload []func()
}

// tokenSet is one parsed tokens file.
type tokenSet struct {
	hashes     []Fingerprint
	principals []Principal
}

// Fingerprint is the SHA-256 of a token. A connection that outlives one
// request keeps it, rather than the token, to look its token up again
// after a reload.
type Fingerprint [sha256.Size]byte

// FingerprintOf returns the fingerprint of token.
func FingerprintOf(token string) Fingerprint { return sha256.Sum256([]byte(token)) }

// Load reads the tokens file at path. The error names the file, and the
// entry and field at fault.
func Load(path string) (*Tokens, error) {
	t := &Tokens{path: path}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Parse reads tokens given inline: data holds what a tokens file would.
// The error names the entry and field at fault, never a value of data.
// There is nothing to read again: Reload keeps these tokens.
func Parse(data []byte) (*Tokens, error) {
	s, err := parse(data)
	if err != nil {
		return nil, err
	}
	t := &Tokens{}
	t.set.Store(s)
	return t, nil
}

// Reload reads the tokens file again, then runs the functions given to
// OnReload. On any error the tokens in use stay as they were and the
// error says why. Tokens given inline (Parse) stay as they are.
func (t *Tokens) Reload() error {
	t.reload.Lock()
	defer t.reload.Unlock()
	if t.path == "" {
		return nil
	}
	data, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	s, err := parse(data)
	if err != nil {
		return fmt.Errorf("tokens file %s: %w", t.path, err)
	}
	t.set.Store(s)
	for _, f := range t.onReload {
		f()
	}
	return nil
}

// OnReload makes every later successful Reload of a file call f once the
// new tokens are in use, so that whoever keeps a fingerprint (an open
// connection) can look it up again. Reloads, f included, run one at a
// time.
func (t *Tokens) OnReload(f func()) {
	t.reload.Lock()
	defer t.reload.Unlock()
	t.onReload = append(t.onReload, f)
}

// Len is the number of tokens in use.
func (t *Tokens) Len() int { return len(t.set.Load().hashes) }

// Authenticate returns the principal of a bearer token: the value of an
// `Authorization: Bearer TOKEN` header without the scheme, or a token a
// client sent some other way (the first message of a WebSocket).
func (t *Tokens) Authenticate(bearer string) (Principal, bool) {
	if bearer == "" {
		return Principal{}, false
	}
	return t.Lookup(FingerprintOf(bearer))
}

// Lookup returns the principal of the token whose fingerprint is f, as
// the tokens now in use name it. The fingerprint is compared in constant
// time with every known one, so the time taken says nothing about how
// close a guess came.
func (t *Tokens) Lookup(f Fingerprint) (Principal, bool) {
	s := t.set.Load()
	found := -1
	for i := range s.hashes {
		if subtle.ConstantTimeCompare(f[:], s.hashes[i][:]) == 1 {
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
