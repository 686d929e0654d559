package sqlite

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"modernc.org/libc"
	lib "modernc.org/sqlite/lib"
)

// walVFSName names the VFS the writer's connection opens the database
// through: SQLite's own (unix) VFS, except that the WAL file's writes are
// gathered and reach the file in one write per commit.
//
// SQLite writes each WAL frame with two writes, its 24-byte header and its
// page, so a commit of seven pages costs fourteen system calls; on the
// virtual machines measured one costs a few microseconds, most of the time
// a commit spends writing. The writes of a commit are contiguous, so they
// are kept in a buffer and written with one pwrite once the commit's last
// frame is in it, before SQLite publishes the commit to other connections
// (which happens after its frames are written). Every other use of the
// WAL file (a read, sync, size, truncation or close, a write elsewhere, or
// a full buffer) writes the buffer first, so SQLite never finds the file
// other than it left it. The database file is SQLite's own, except that a
// memory barrier on its shared-memory index (the last step of publishing a
// commit) also writes whatever its WAL still holds.
const walVFSName = "taskwire-wal"

// walBufferMax bounds a WAL buffer; a commit larger than this is written in
// pieces of at most this size. It is the most SQLite's unix VFS writes
// with one call (it masks a larger size to its low 17 bits).
const walBufferMax = 1<<17 - 1

// walFrameHeader is the size of a WAL frame's header; bytes 4-7 of a
// commit frame's header hold the database size in pages, 0 in other frames.
const walFrameHeader = 24

var (
	walVFSOnce sync.Once
	walVFSErr  error

	walVFS        lib.Tsqlite3_vfs // the registered VFS, a copy of the default one
	baseVFS       uintptr          // the default VFS
	walIO, dbIO   wrappedIO        // the WAL's and the database file's methods
	walVFSFilesMu sync.Mutex
	walVFSFiles   = map[uintptr]*walBuffer{} // by sqlite3_file, WAL and database files alike
	walVFSBuffers = map[string]*walBuffer{}  // by database path, for the WAL's open to find
)

// A walBuffer holds the writes to one WAL file not yet made.
type walBuffer struct {
	buf []byte
	off int64 // where buf[0] goes in the file
	// commit is set when the header of a commit frame is buffered: the
	// next write, its page, ends the commit.
	commit bool
	// err is a failed write of the buffer that no method could return (a
	// barrier has no result): frames of a published commit may be lost.
	// The writer checks it after each commit and fails the store for good.
	err error
	// lost is a failed write of the buffer that SQLite was told of: the
	// call that made it failed, but frames SQLite had been told were
	// written (a cache spill earlier in the transaction) went with it, so
	// the transaction must not commit. The writer checks it before each
	// commit and clears it once the transaction is rolled back.
	lost error
	// pFile is the WAL file, 0 while it is not open.
	pFile uintptr
	// frames and writes count the frame headers buffered and the writes
	// made to the file.
	frames, writes int64
	// failWrites, set by a test, fails each write of the buffer as a full
	// disk does.
	failWrites bool
}

// registerWALVFS registers the VFS named walVFSName, once.
func registerWALVFS() error {
	walVFSOnce.Do(func() { walVFSErr = doRegisterWALVFS() })
	return walVFSErr
}

func doRegisterWALVFS() error {
	tls := libc.NewTLS()
	defer tls.Close()
	baseVFS = lib.Xsqlite3_vfs_find(tls, 0)
	if baseVFS == 0 {
		return fmt.Errorf("sqlite: no default VFS")
	}
	walVFS = *(*lib.Tsqlite3_vfs)(ptr(baseVFS))
	name, err := libc.CString(walVFSName)
	if err != nil {
		return err
	}
	walVFS.FzName = name
	walVFS.FpNext = 0
	*(*func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32)(unsafe.Pointer(&walVFS.FxOpen)) = walVFSOpen
	if rc := lib.Xsqlite3_vfs_register(tls, uintptr(unsafe.Pointer(&walVFS)), 0); rc != lib.SQLITE_OK {
		return fmt.Errorf("sqlite: register VFS %s: code %d", walVFSName, rc)
	}
	return nil
}

// walVFSOpen opens a file with the default VFS and, for the database and
// its WAL, puts its methods in front of the default ones.
func walVFSOpen(tls *libc.TLS, _ uintptr, zName uintptr, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	base := *(*func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32)(unsafe.Pointer(&(*lib.Tsqlite3_vfs)(ptr(baseVFS)).FxOpen))
	rc := base(tls, baseVFS, zName, pFile, flags, pOutFlags)
	if rc != lib.SQLITE_OK || zName == 0 || flags&(lib.SQLITE_OPEN_MAIN_DB|lib.SQLITE_OPEN_WAL) == 0 {
		return rc
	}
	f := (*lib.Tsqlite3_file)(ptr(pFile))
	walVFSFilesMu.Lock()
	defer walVFSFilesMu.Unlock()
	name := libc.GoString(zName)
	if flags&lib.SQLITE_OPEN_MAIN_DB != 0 {
		if !dbIO.wrap(f, dbShmBarrierMethods) {
			return rc
		}
		b := &walBuffer{}
		walVFSBuffers[name] = b
		walVFSFiles[pFile] = b
		return rc
	}
	b := walVFSBuffers[strings.TrimSuffix(name, "-wal")]
	if b == nil || b.pFile != 0 || !walIO.wrap(f, walBufferMethods) {
		return rc // a WAL whose database this VFS did not open: unbuffered
	}
	b.pFile = pFile
	walVFSFiles[pFile] = b
	return rc
}

// wrappedIO is the io methods of one kind of file the default VFS opens,
// and a copy of them with some replaced.
type wrappedIO struct {
	base    uintptr // the default VFS's methods, 0 until the first open
	baseIO  lib.Tsqlite3_io_methods
	wrapped lib.Tsqlite3_io_methods
}

// wrap puts the replaced methods in front of f's, when f has the methods
// of the first file wrapped (replace sets them up then); it reports
// whether it did. Called with walVFSFilesMu held.
func (w *wrappedIO) wrap(f *lib.Tsqlite3_file, replace func(*lib.Tsqlite3_io_methods)) bool {
	if w.base == 0 {
		w.base = f.FpMethods
		w.baseIO = *(*lib.Tsqlite3_io_methods)(ptr(w.base))
		w.wrapped = w.baseIO
		replace(&w.wrapped)
	}
	if f.FpMethods != w.base {
		return false
	}
	f.FpMethods = uintptr(unsafe.Pointer(&w.wrapped))
	return true
}

// walBufferMethods replaces the methods of a WAL file that must see the
// buffer written first.
func walBufferMethods(m *lib.Tsqlite3_io_methods) {
	*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&m.FxClose)) = walClose
	*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&m.FxRead)) = walRead
	*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&m.FxWrite)) = walWrite
	*(*func(*libc.TLS, uintptr, int64) int32)(unsafe.Pointer(&m.FxTruncate)) = walTruncate
	*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&m.FxSync)) = walSync
	*(*func(*libc.TLS, uintptr, uintptr) int32)(unsafe.Pointer(&m.FxFileSize)) = walFileSize
}

// dbShmBarrierMethods replaces the database file's close and barrier.
func dbShmBarrierMethods(m *lib.Tsqlite3_io_methods) {
	*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&m.FxClose)) = dbClose
	*(*func(*libc.TLS, uintptr))(unsafe.Pointer(&m.FxShmBarrier)) = dbShmBarrier
}

func fileBuffer(pFile uintptr) *walBuffer {
	walVFSFilesMu.Lock()
	defer walVFSFilesMu.Unlock()
	return walVFSFiles[pFile]
}

// flush writes b's buffer to its WAL file with the default write.
func (b *walBuffer) flush(tls *libc.TLS) int32 {
	if len(b.buf) == 0 {
		return lib.SQLITE_OK
	}
	write := *(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&walIO.baseIO.FxWrite))
	rc := int32(lib.SQLITE_FULL)
	if !b.failWrites {
		rc = write(tls, b.pFile, uintptr(unsafe.Pointer(&b.buf[0])), int32(len(b.buf)), b.off)
	}
	b.writes++
	b.buf, b.commit = b.buf[:0], false
	if rc != lib.SQLITE_OK && b.lost == nil {
		b.lost = fmt.Errorf("write WAL: SQLite I/O error code %d", rc)
	}
	return rc
}

func walWrite(tls *libc.TLS, pFile uintptr, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	b := fileBuffer(pFile)
	if len(b.buf) > 0 && (iOfst != b.off+int64(len(b.buf)) || len(b.buf)+int(iAmt) > walBufferMax) {
		if rc := b.flush(tls); rc != lib.SQLITE_OK {
			return rc
		}
	}
	if len(b.buf) == 0 {
		b.off = iOfst
	}
	data := unsafe.Slice((*byte)(ptr(zBuf)), iAmt)
	b.buf = append(b.buf, data...)
	if b.commit {
		return b.flush(tls)
	}
	if iAmt == walFrameHeader {
		b.frames++
		b.commit = binary.BigEndian.Uint32(data[4:8]) != 0
	}
	return lib.SQLITE_OK
}

func walRead(tls *libc.TLS, pFile uintptr, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	if rc := fileBuffer(pFile).flush(tls); rc != lib.SQLITE_OK {
		return rc
	}
	return (*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&walIO.baseIO.FxRead)))(tls, pFile, zBuf, iAmt, iOfst)
}

func walTruncate(tls *libc.TLS, pFile uintptr, size int64) int32 {
	if rc := fileBuffer(pFile).flush(tls); rc != lib.SQLITE_OK {
		return rc
	}
	return (*(*func(*libc.TLS, uintptr, int64) int32)(unsafe.Pointer(&walIO.baseIO.FxTruncate)))(tls, pFile, size)
}

func walSync(tls *libc.TLS, pFile uintptr, flags int32) int32 {
	if rc := fileBuffer(pFile).flush(tls); rc != lib.SQLITE_OK {
		return rc
	}
	return (*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&walIO.baseIO.FxSync)))(tls, pFile, flags)
}

func walFileSize(tls *libc.TLS, pFile uintptr, pSize uintptr) int32 {
	if rc := fileBuffer(pFile).flush(tls); rc != lib.SQLITE_OK {
		return rc
	}
	return (*(*func(*libc.TLS, uintptr, uintptr) int32)(unsafe.Pointer(&walIO.baseIO.FxFileSize)))(tls, pFile, pSize)
}

func walClose(tls *libc.TLS, pFile uintptr) int32 {
	b := fileBuffer(pFile)
	rc := b.flush(tls)
	walVFSFilesMu.Lock()
	delete(walVFSFiles, pFile)
	b.pFile = 0
	walVFSFilesMu.Unlock()
	if crc := (*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&walIO.baseIO.FxClose)))(tls, pFile); rc == lib.SQLITE_OK {
		rc = crc
	}
	return rc
}

func dbClose(tls *libc.TLS, pFile uintptr) int32 {
	walVFSFilesMu.Lock()
	b := walVFSFiles[pFile]
	delete(walVFSFiles, pFile)
	for name, nb := range walVFSBuffers {
		if nb == b {
			delete(walVFSBuffers, name)
		}
	}
	walVFSFilesMu.Unlock()
	return (*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&dbIO.baseIO.FxClose)))(tls, pFile)
}

func dbShmBarrier(tls *libc.TLS, pFile uintptr) {
	if b := fileBuffer(pFile); b != nil && b.pFile != 0 {
		// No result to tell SQLite with: the writer finds it after the
		// commit (walWriteFailures).
		if rc := b.flush(tls); rc != lib.SQLITE_OK && b.err == nil {
			b.err = fmt.Errorf("write WAL: SQLite I/O error code %d", rc)
		}
	}
	(*(*func(*libc.TLS, uintptr))(unsafe.Pointer(&dbIO.baseIO.FxShmBarrier)))(tls, pFile)
}

// writerDSN is dsn for the writer's connection, through the VFS that
// gathers a commit's WAL writes into one (SQLite's own when it cannot be
// registered).
func writerDSN(path string) string {
	if err := registerWALVFS(); err != nil {
		return dsn(path, false)
	}
	return dsn(path, false) + "&vfs=" + walVFSName
}

// walWriteFailures returns the first failed writes of the WAL buffer of
// the database at path: published, one no SQLite call could report (frames
// of a published commit may be lost), and lost, one since the last
// clearWALWriteLost (the writer's transaction may have lost frames, and
// must not commit).
func walWriteFailures(path string) (published, lost error) {
	walVFSFilesMu.Lock()
	defer walVFSFilesMu.Unlock()
	if b := walVFSBuffers[path]; b != nil {
		return b.err, b.lost
	}
	return nil, nil
}

// clearWALWriteLost forgets the failed writes of the WAL buffer of the
// database at path: the transaction whose frames they lost is rolled back.
func clearWALWriteLost(path string) {
	walVFSFilesMu.Lock()
	defer walVFSFilesMu.Unlock()
	if b := walVFSBuffers[path]; b != nil {
		b.lost = nil
	}
}

// ptr turns an address SQLite holds as a uintptr (memory of its own, not
// Go's) into a pointer.
func ptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }
