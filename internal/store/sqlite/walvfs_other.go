//go:build !linux

package sqlite

// writerDSN is dsn for the writer's connection: SQLite's own VFS here (the
// VFS that gathers a commit's WAL writes is built for Linux).
func writerDSN(path string) string { return dsn(path, false) }

// walWriteFailures are nil: nothing buffers WAL writes here.
func walWriteFailures(string) (published, lost error) { return nil, nil }

// clearWALWriteLost does nothing: nothing buffers WAL writes here.
func clearWALWriteLost(string) {}
