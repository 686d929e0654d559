//go:build !linux

package sqlite

import "os"

// fdatasync flushes f to disk; where fdatasync is not available, with
// fsync (F_FULLFSYNC on macOS).
func fdatasync(f *os.File) error { return f.Sync() }
