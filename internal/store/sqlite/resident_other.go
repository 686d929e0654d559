//go:build !linux

package sqlite

import "context"

// residentSupported reports whether this system can keep files resident:
// the keeper needs Linux's MADV_POPULATE_READ.
const residentSupported = false

// mapping stands for a file the keeper would map, where it cannot.
type mapping struct{ path string }

func physicalMemory() int64                              { return 0 }
func (m *mapping) refresh(int64) (int64, error)          { return 0, nil }
func (m *mapping) size() int64                           { return 0 }
func (m *mapping) populate(context.Context, int64) error { return nil }
func (m *mapping) unmap() error                          { return nil }
func unsupported(error) bool                             { return true }
