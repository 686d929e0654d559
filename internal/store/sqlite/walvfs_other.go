//go:build !linux

package sqlite

// writerDSN is dsn for the writer's connection: SQLite's own VFS here (the
// VFS that gathers a commit's WAL writes is built for Linux).
func writerDSN(path string) string { return dsn(path, false) }

// walWriteErr is nil: nothing buffers WAL writes here.
func walWriteErr(string) error { return nil }

// walWriteLost is nil: nothing buffers WAL writes here.
func walWriteLost(string) error { return nil }

// clearWALWriteLost does nothing: nothing buffers WAL writes here.
func clearWALWriteLost(string) {}
