package sqlite

import (
	"context"
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// residentSupported reports whether this system can keep files resident.
const residentSupported = true

// mapping is one file of the database mapped into the process: data is
// nil while nothing of it is mapped.
type mapping struct {
	path string
	data []byte
}

// physicalMemory is the size of the machine's memory in bytes, 0 when
// unknown.
func physicalMemory() int64 {
	var info unix.Sysinfo_t
	if unix.Sysinfo(&info) != nil {
		return 0
	}
	return int64(info.Totalram) * int64(info.Unit)
}

// refresh maps the first limit bytes of the file (all of it when it is
// smaller), growing or shrinking the mapping it already has in place, and
// returns how many bytes it maps. A missing file maps nothing.
func (m *mapping) refresh(limit int64) (int64, error) {
	info, err := os.Stat(m.path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, m.unmap()
	}
	if err != nil {
		return 0, err
	}
	size := min(info.Size(), limit)
	switch {
	case size <= 0:
		return 0, m.unmap()
	case m.data == nil:
		err = m.mapFile(size)
	case int64(len(m.data)) != size:
		// mremap keeps the pages already mapped; only the new ones fault.
		var data []byte
		data, err = unix.Mremap(m.data, int(size), unix.MREMAP_MAYMOVE)
		if err == nil {
			m.data = data
		}
	}
	if err != nil {
		return 0, errors.Join(err, m.unmap())
	}
	return size, nil
}

// mapFile maps the first size bytes of the file, read-only and shared:
// the mapping is a view of the page cache, not a copy.
func (m *mapping) mapFile(size int64) error {
	f, err := os.Open(m.path)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	m.data = data
	return nil
}

// populateStep is how much of a mapping one madvise call populates, so
// that closing the store waits for at most one step of a first pass that
// reads a large file from the disk.
const populateStep = 64 << 20

// size is how many bytes of the file are mapped.
func (m *mapping) size() int64 { return int64(len(m.data)) }

// populate has the kernel read into memory and map every page of the
// mapping from byte from on that is not there, in large requests; the
// process never touches the mapping itself. It stops early when ctx
// ends. A file cut shorter since refresh makes it fail with EFAULT
// instead of a SIGBUS; the next refresh maps the new size.
func (m *mapping) populate(ctx context.Context, from int64) error {
	for off := int(from) &^ (os.Getpagesize() - 1); off < len(m.data); off += populateStep {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(off+populateStep, len(m.data))
		if err := unix.Madvise(m.data[off:end], unix.MADV_POPULATE_READ); err != nil {
			return err
		}
	}
	return nil
}

// unmap releases the mapping.
func (m *mapping) unmap() error {
	if m.data == nil {
		return nil
	}
	err := unix.Munmap(m.data)
	m.data = nil
	return err
}

// unsupported reports the error of a kernel without MADV_POPULATE_READ
// (before Linux 5.14), on which the keeper stops.
func unsupported(err error) bool { return errors.Is(err, unix.EINVAL) }
