package sqlite

import (
	"fmt"
	"math"
	"os"
	"slices"
	"sync/atomic"

	"github.com/taskwire/taskwire/internal/store"
)

// walSyncer answers the writer's committed batches, making the WAL durable
// first when a batch needs it. The writer commits at synchronous=NORMAL,
// which writes a commit's frames to the WAL without waiting for the disk,
// and goes on to the next batch while the syncer waits for the fsync: a
// batch's statements and the previous batch's fsync overlap instead of
// taking turns, and one fsync covers every batch committed before it
// started.
//
// Batches are answered in commit order, so an op that needs no fsync of its
// own (a claim) is never answered before the changes committed ahead of it
// (the creation of the task it claims) are on disk. Other connections can
// read a commit, and the event hub can deliver its events, up to one fsync
// before its callers are answered; a power failure in that window can take
// back a change that was seen but never acknowledged, never one that was.
type walSyncer struct {
	path  string   // the database's WAL file
	f     *os.File // the WAL file, opened at the first sync
	flush func(*os.File) error
	queue chan committed
	done  chan struct{}
	// waiting counts the batches sent and not yet answered.
	waiting atomic.Int64
	// failed is the first failed sync, after which nothing is answered
	// success again: Linux reports a failed writeback once and then marks
	// the pages clean, so a later fsync can succeed while the frames of
	// an earlier commit, which later ones follow in the WAL, never reached
	// the disk. Only reopening the store (WAL recovery) clears it.
	failed atomic.Pointer[store.UnavailableError]
}

// committed is a batch the writer has finished, waiting for its answers.
type committed struct {
	ops  []*op
	errs []error
	// durable is whether an op that succeeded needs the WAL on disk before
	// it is answered.
	durable bool
}

// syncerQueue is how many committed batches may wait for the syncer before
// the writer waits too.
const syncerQueue = 64

// newWALSyncer returns a syncer of the WAL of the database file at dbPath,
// the path SQLite resolved (symbolic links followed); run starts it.
func newWALSyncer(dbPath string) *walSyncer {
	return &walSyncer{path: dbPath + "-wal", flush: fdatasync, queue: make(chan committed, syncerQueue), done: make(chan struct{})}
}

// run answers the batches sent on queue until it is closed and drained.
// The batches waiting when an fsync starts share it.
func (s *walSyncer) run() {
	defer close(s.done)
	var pending []committed
	for c := range s.queue {
		pending = appendReady(append(pending[:0], c), s.queue, math.MaxInt)
		err := s.failure()
		if err == nil && slices.ContainsFunc(pending, func(c committed) bool { return c.durable }) {
			err = s.sync()
		}
		for _, c := range pending {
			c.answer(err)
		}
		s.waiting.Add(-int64(len(pending)))
		clear(pending)
	}
}

// send queues c for its answers (the writer's side).
func (s *walSyncer) send(c committed) {
	s.waiting.Add(1)
	s.queue <- c
}

// idle reports whether every batch sent has been answered, so that a batch
// needing no fsync may be answered at once (the writer's side).
func (s *walSyncer) idle() bool { return s.waiting.Load() == 0 }

// answer sends each op its outcome; syncErr, when not nil, replaces the
// success of every op, whose change may then not be on disk.
func (c committed) answer(syncErr error) {
	for i, o := range c.ops {
		err := c.errs[i]
		if err == nil && syncErr != nil {
			err = syncErr
		}
		o.done <- err
	}
}

// sync flushes the WAL file to disk. It reopens the file when SQLite has
// replaced it, so that it never flushes a file SQLite no longer writes. A
// failure is unavailability, for good (see failed): the changes are
// committed but may not be on disk.
func (s *walSyncer) sync() error {
	err := s.open()
	if err == nil {
		err = s.flush(s.f)
	}
	if err != nil {
		return s.fail(fmt.Errorf("sync WAL: %w", err))
	}
	return nil
}

// fail records err, a change committed that may not reach the disk, as
// the store's failure for good (see failed) and returns it.
func (s *walSyncer) fail(err error) error {
	s.failed.CompareAndSwap(nil, unavailableFor(fmt.Errorf("%w (restart taskwire to recover)", err)))
	return s.failure()
}

// failure returns the error of the first failed sync, or nil.
func (s *walSyncer) failure() error {
	if e := s.failed.Load(); e != nil {
		return e
	}
	return nil
}

func (s *walSyncer) open() error {
	onDisk, err := os.Stat(s.path)
	if err != nil {
		return err
	}
	if s.f != nil {
		held, err := s.f.Stat()
		if err == nil && os.SameFile(held, onDisk) {
			return nil
		}
		s.f.Close()
		s.f = nil
	}
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	s.f = f
	return nil
}

// close waits until every batch sent has been answered (the caller has
// closed queue), then closes the WAL file.
func (s *walSyncer) close() error {
	<-s.done
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}
