//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris || windows)

package sqlite

import "os"

// lockFile takes no lock where neither flock nor LockFileEx is available:
// nothing stops two processes from opening one database there.
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) error { return nil }
