package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Entry is one element of the tokens file: a JSON array of
// {name, role, workerId?, token | sha256}. Exactly one of Token (the
// plaintext) and SHA256 (its hex SHA-256) is given.
type Entry struct {
	Name     string `json:"name"`
	Role     Role   `json:"role"`
	WorkerID string `json:"workerId,omitempty"`
	Token    string `json:"token,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
}

// MinTokenLength is the shortest plaintext token the file accepts.
const MinTokenLength = 16

var (
	namePattern     = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,128}$`)
	workerIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,128}$`)
	hashPattern     = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// parse reads a tokens file. Its errors name the entry (by position and
// name) and the field at fault, and never quote another value.
func parse(data []byte) (*tokenSet, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var raws []json.RawMessage
	if err := dec.Decode(&raws); err != nil {
		return nil, fmt.Errorf("want a JSON array of {name, role, workerId?, token | sha256}: %w", redact(err))
	}
	if dec.More() {
		return nil, errors.New("unexpected data after the JSON array")
	}
	if len(raws) == 0 {
		return nil, errors.New("no tokens: the array is empty, so nobody could call the server")
	}
	s := &tokenSet{}
	names := map[string]int{}
	hashes := map[Fingerprint]int{}
	for i, raw := range raws {
		e, err := decodeEntry(raw)
		if err != nil {
			return nil, fmt.Errorf("entry %d: want {name, role, workerId?, token | sha256}: %w", i+1, err)
		}
		at := fmt.Sprintf("entry %d", i+1) // its name could be a token pasted by mistake
		h, err := e.check()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		if j, dup := names[e.Name]; dup {
			return nil, fmt.Errorf("%s: name: used by entry %d too; names must be unique", at, j)
		}
		if j, dup := hashes[h]; dup {
			return nil, fmt.Errorf("%s: token: the same token as entry %d; each token must be unique", at, j)
		}
		names[e.Name], hashes[h] = i+1, i+1
		s.hashes = append(s.hashes, h)
		s.principals = append(s.principals, Principal{Name: e.Name, Role: e.Role, WorkerID: e.WorkerID})
	}
	return s, nil
}

// decodeEntry decodes one element of the array, refusing unknown fields.
func decodeEntry(raw []byte) (Entry, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var e Entry
	if err := dec.Decode(&e); err != nil {
		return Entry{}, redact(err)
	}
	return e, nil
}

// redact keeps decoding errors from quoting the file's values: a type
// error names the field, a syntax error its offset, an unknown field its
// name unless that is as long as a token could be.
func redact(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return fmt.Errorf("field %q: want a JSON %s, got %s", typeErr.Field, typeErr.Type, typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("invalid JSON at byte %d", syntaxErr.Offset)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if len(name) >= MinTokenLength+2 { // quotes included
			return fmt.Errorf("an unknown field (its name, %d characters long, is not repeated)", len(name)-2)
		}
		return fmt.Errorf("unknown field %s", name)
	}
	return err
}

// Validate checks one entry as the tokens file does; the error names the
// field at fault.
func (e Entry) Validate() error {
	_, err := e.check()
	return err
}

// check validates one entry and returns the SHA-256 of its token.
func (e Entry) check() (Fingerprint, error) {
	var h Fingerprint
	switch {
	case !namePattern.MatchString(e.Name):
		return h, errors.New("name: required, 1 to 128 of A-Z a-z 0-9 _ . : @ -")
	case e.Role != RoleAdmin && e.Role != RoleWorker && e.Role != RoleProducer:
		return h, errors.New("role: want one of admin, worker, producer")
	case e.Role == RoleWorker && e.WorkerID == "":
		return h, errors.New("workerId: required for role worker (the worker this token acts as)")
	case e.Role != RoleWorker && e.WorkerID != "":
		return h, fmt.Errorf("workerId: only role worker is bound to a worker, not %s", e.Role)
	case e.WorkerID != "" && !workerIDPattern.MatchString(e.WorkerID):
		return h, errors.New("workerId: 1 to 128 of A-Z a-z 0-9 _ . : @ -")
	case e.Token != "" && e.SHA256 != "":
		return h, errors.New("token and sha256: give one of them, not both")
	case e.Token == "" && e.SHA256 == "":
		return h, errors.New("token or sha256: one of them is required")
	case e.Token != "":
		if len(e.Token) < MinTokenLength {
			return h, fmt.Errorf("token: at least %d characters (make one with `taskwire token new`)", MinTokenLength)
		}
		return FingerprintOf(e.Token), nil
	case !hashPattern.MatchString(e.SHA256):
		return h, errors.New("sha256: want 64 lowercase hex digits, the SHA-256 of the token")
	}
	_, err := hex.Decode(h[:], []byte(e.SHA256))
	return h, err
}

// Hash returns the hex SHA-256 of token, as the sha256 field of the tokens
// file holds it.
func Hash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// TokenBytes is how many random bytes a new token holds (256 bits).
const TokenBytes = 32

// NewToken returns a fresh random token: "tw_" and TokenBytes bytes from
// crypto/rand, base64url-encoded.
func NewToken() (string, error) {
	b := make([]byte, TokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return "tw_" + base64.RawURLEncoding.EncodeToString(b), nil
}
