package sqlite

import (
	"context"
	"time"
)

// residentInterval is how often the keeper goes over the whole of the
// database files: well within the minute or more that reclaimers let a
// page sit unused before they evict it.
const residentInterval = 10 * time.Second

// growthInterval is how often the keeper maps what the files have grown
// by since it last looked. A page the writer appends is unmapped page
// cache until the keeper maps it, and a reclaimer that judges memory by
// physical regions can take it within seconds of its write: a fresh page
// in a region that sat idle for a minute looks idle too. On the host
// measured, hundreds of pages of a WAL written 1-4 s before were evicted
// that way, and the writer read each back from the disk before it wrote
// the WAL over them (the README's claim tail at 10,000 queued).
const growthInterval = 100 * time.Millisecond

// keeper keeps the database file and its WAL in memory, up to a budget of
// bytes, going over them every residentInterval and mapping what they
// grow by every growthInterval.
//
// Why: a claim reads the rows and index entries of the oldest queued
// tasks, which nothing has read since they were queued. A deep queue holds
// them for minutes, and a host that reclaims idle page cache (proactive
// reclaim, or plain memory pressure) evicts them meanwhile. The writer
// then reads them back from the disk one page at a time, every caller of
// its batch waiting (the README's 1M claim tail). The keeper maps the
// files and has the kernel populate the mapping: pages that left come
// back in large reads, off the writer's path, and every page is mapped,
// which reclaim that takes only unmapped page cache (DAMON's, as set on
// the host measured) passes over. It reserves nothing: under memory
// pressure the kernel can still take the pages, and the next pass brings
// them back.
type keeper struct {
	files  []mapping
	budget int64
	stop   context.CancelFunc
	done   chan struct{}
}

// startKeeper starts keeping the files at paths resident, the first ones
// first, up to budget bytes in all. Where the system cannot, it does
// nothing.
func startKeeper(ctx context.Context, budget int64, paths ...string) *keeper {
	k := &keeper{budget: budget, done: make(chan struct{})}
	for _, p := range paths {
		k.files = append(k.files, mapping{path: p})
	}
	ctx, k.stop = context.WithCancel(ctx)
	go k.run(ctx)
	return k
}

func (k *keeper) run(ctx context.Context) {
	defer close(k.done)
	if !residentSupported || k.budget <= 0 {
		return
	}
	whole := time.NewTicker(residentInterval)
	defer whole.Stop()
	growth := time.NewTicker(growthInterval)
	defer growth.Stop()
	err := k.pass(ctx)
	for !unsupported(err) {
		select {
		case <-ctx.Done():
			return
		case <-whole.C:
			err = k.pass(ctx)
		case <-growth.C:
			err = k.grow(ctx)
		}
	}
}

// pass maps what each file has grown to, within the budget, and
// populates the whole of each mapping, until ctx ends. A failure leaves a
// file as it is until the next pass; pass returns the last one.
func (k *keeper) pass(ctx context.Context) error {
	return k.refresh(ctx, false)
}

// grow maps what each file has grown to, within the budget, and
// populates only what the mappings have grown by since the keeper last
// looked (a pass or a grow).
func (k *keeper) grow(ctx context.Context) error {
	return k.refresh(ctx, true)
}

// refresh is pass, or grow when growthOnly is set.
func (k *keeper) refresh(ctx context.Context, growthOnly bool) error {
	var failed error
	left := k.budget
	for i := range k.files {
		m := &k.files[i]
		var from int64
		if growthOnly {
			from = m.size()
		}
		n, err := m.refresh(left)
		if err == nil && n > from {
			err = m.populate(ctx, from)
		}
		if err != nil {
			failed = err
		}
		left -= n
	}
	return failed
}

// close stops the keeper and releases its mappings.
func (k *keeper) close() {
	k.stop()
	<-k.done
	for i := range k.files {
		_ = k.files[i].unmap()
	}
}
