package redispg

import "strconv"

// keys builds every Redis key name of one deployment. All of them carry
// the same hash tag, {prefix}, so that they live in one hash slot: a Lua
// script may touch any of them on a Redis Cluster. The scripts build the
// few keys they derive at run time (a task's, a queue's) from the same
// prefixes, passed in ARGV.
type keys struct {
	tag string // "{prefix}:"
}

func newKeys(prefix string) keys { return keys{tag: "{" + prefix + "}:"} }

// task is the hash of one task (fields: see taskhash.go).
func (k keys) task(id string) string { return k.taskPrefix() + id }
func (k keys) taskPrefix() string    { return k.tag + "t:" }

// ready is the sorted set of a queue's unreserved tasks that are due,
// scored by priority then age.
func (k keys) ready(queue string) string { return k.readyPrefix() + queue }
func (k keys) readyPrefix() string       { return k.tag + "ready:" }

// reserved is the sorted set of the due pending tasks reserved for a
// worker (task.assign), scored as ready.
func (k keys) reserved(worker string) string { return k.reservedPrefix() + worker }
func (k keys) reservedPrefix() string        { return k.tag + "rsv:" }

// held is the set of a worker's unfinished tasks: reserved or in_progress.
func (k keys) held(worker string) string { return k.heldPrefix() + worker }
func (k keys) heldPrefix() string        { return k.tag + "held:" }

// createFence is the hash whose existence fences off the transition of a
// create that the caller settled as not committed (see settle.lua).
func (k keys) createFence(id string) string { return k.tag + "fence:" + id }

// deletion is the hash whose existence records that a task was deleted
// until PostgreSQL holds its tombstone (see txn.deleteTask).
func (k keys) deletion(id string) string { return k.tag + "deleted:" + id }

// worker is the hash of one registered worker.
func (k keys) worker(id string) string { return k.workerPrefix() + id }
func (k keys) workerPrefix() string    { return k.tag + "w:" }

// delayed is the sorted set of pending tasks not due yet, scored by RunAt.
func (k keys) delayed() string { return k.tag + "delayed" }

// leases is the sorted set of in_progress tasks, scored by lease expiry.
func (k keys) leases() string { return k.tag + "leases" }

// workers is the set of registered worker ids.
func (k keys) workers() string { return k.tag + "workers" }

// seen is the sorted set of online workers, scored by LastSeen.
func (k keys) seen() string { return k.tag + "seen" }

// eventSeq counts the events ever appended: the last event id issued.
func (k keys) eventSeq() string { return k.tag + "evseq" }

// events is the event log, a stream whose entry ids are "seq-0".
func (k keys) events() string { return k.tag + "events" }

// outbox is the stream of task ids whose state Redis changed without
// PostgreSQL (claims, lease renewals, expiries, completions): the
// persister copies them over.
func (k keys) outbox() string { return k.tag + "outbox" }

// channel is the pub/sub channel on which the scripts announce events
// ("e") and tasks that became ready ("r").
func (k keys) channel() string { return k.tag + "notify" }

// rates is the hash of the claims ("c") and completions ("d") that the
// processes served in one second (Unix time sec), for system.metrics.
func (k keys) rates(sec int64) string { return k.tag + "rates:" + strconv.FormatInt(sec, 10) }

// reconcileLease names the process that reconciles Redis with PostgreSQL.
func (k keys) reconcileLease() string { return k.tag + "reconciler" }
