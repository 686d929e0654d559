package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
)

// The client subcommands talk to a running server through package client
// only. Their exit statuses, for scripts:
const (
	exitOK          = 0 // done
	exitServer      = 1 // the server refused the call (any other JSON-RPC error), or another failure
	exitUsage       = 2 // bad command line
	exitNotFound    = 3 // no such task (or worker)
	exitConflict    = 4 // the task's state does not allow it (-32003)
	exitNotAllowed  = 5 // missing or insufficient token (HTTP 401, -32002)
	exitUnavailable = 6 // the server cannot be reached, is unavailable (-32001) or rate limits (-32000) beyond the retries
)

// defaultServer is where the client subcommands go without --server or
// TASKWIRE_SERVER.
const defaultServer = "http://127.0.0.1:7700"

// cliCommand is one client subcommand.
type cliCommand struct {
	summary string
	run     func(ctx context.Context, cio cliIO, args []string) error
}

// cliCommands is the dispatch table of the client subcommands.
var cliCommands = map[string]cliCommand{
	"create":   {"create a task", runCreate},
	"get":      {"show a task", runGet},
	"list":     {"list tasks", runList},
	"complete": {"complete or fail a task", runComplete},
	"workers":  {"list the registered workers", runWorkers},
	"events":   {"follow the event stream", runEvents},
	"work":     {"run a command for each task (a worker without code)", runWork},
	"bench":    {"load the server and measure rates and latencies", runBench},
}

// printUsage writes the top-level usage text followed by the client
// subcommands.
func printUsage(w io.Writer) {
	fmt.Fprint(w, usage)
	fmt.Fprintf(w, "\nClient commands (--server, default %s, and --token, before\nor after COMMAND; env TASKWIRE_SERVER, TASKWIRE_TOKEN;\n'taskwire COMMAND --help' for each):\n%s", defaultServer, cliUsage())
}

// cliUsage lists the client subcommands.
func cliUsage() string {
	names := make([]string, 0, len(cliCommands))
	for n := range cliCommands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "  taskwire %-9s %s\n", n, cliCommands[n].summary)
	}
	return b.String()
}

// cliIO is where a subcommand reads and writes, how it reads the
// environment, and how it learns of SIGINT and SIGTERM.
type cliIO struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// notify relays SIGINT and SIGTERM to c until stop is called.
	notify func(c chan<- os.Signal) (stop func())
}

func newCLIIO(stdout, stderr io.Writer) cliIO {
	return cliIO{stdin: os.Stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, notify: notifySignals}
}

// notifySignals relays SIGINT and SIGTERM to c until stop is called.
func notifySignals(c chan<- os.Signal) (stop func()) {
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	return func() { signal.Stop(c) }
}

// cmdFlags is a subcommand's flag set with the flags every subcommand has.
type cmdFlags struct {
	*flag.FlagSet
	cio           cliIO
	usage         string
	server, token string
	json          bool
}

// newFlags returns the flags of a subcommand: usage is its synopsis and
// description with an example; withJSON adds --json.
func newFlags(cio cliIO, name, usage string, withJSON bool) *cmdFlags {
	f := &cmdFlags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), cio: cio, usage: usage}
	// parse prints the usage and errors itself.
	f.SetOutput(io.Discard)
	f.StringVar(&f.server, "server", "", "server URL [TASKWIRE_SERVER, default "+defaultServer+"]")
	f.StringVar(&f.token, "token", "", "bearer token [TASKWIRE_TOKEN]")
	if withJSON {
		f.BoolVar(&f.json, "json", false, "print JSON, for scripts")
	}
	f.Usage = func() {}
	return f
}

// printUsage writes the subcommand's usage text and flags to w.
func (f *cmdFlags) printUsage(w io.Writer) {
	fmt.Fprint(w, f.usage, "\nFlags:\n")
	f.SetOutput(w)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}

// parse parses args, with flags allowed before and after the positional
// arguments (all that follows "--" is positional), and checks that there
// are between minPos and maxPos positional arguments (maxPos < 0: any)
// and that the server is an HTTP URL.
func (f *cmdFlags) parse(args []string, minPos, maxPos int) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printUsage(f.cio.stdout)
				return nil, flag.ErrHelp
			}
			f.printUsage(f.cio.stderr)
			return nil, exitError{code: exitUsage, err: fmt.Errorf("%s: %w", f.Name(), err)}
		}
		rest := f.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if len(pos) < minPos || maxPos >= 0 && len(pos) > maxPos {
		f.printUsage(f.cio.stderr)
		return nil, usageError("%s: wrong number of arguments", f.Name())
	}
	if maxPos == 1 && len(pos) == 1 && pos[0] == "" {
		// A task's text or id: an empty one is a missing argument.
		return nil, usageError("%s: the argument must not be empty", f.Name())
	}
	if err := f.checkToken(); err != nil {
		return nil, err
	}
	return pos, f.checkServer()
}

// given returns the names of the flags set on the command line.
func (f *cmdFlags) given() map[string]bool {
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	return set
}

// serverURL returns the server named by --server, TASKWIRE_SERVER or the
// default; a host:port alone is http://host:port.
func (f *cmdFlags) serverURL() string {
	server := firstOf(f.server, f.cio.getenv("TASKWIRE_SERVER"), defaultServer)
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	return server
}

// checkServer refuses a server URL that no call could reach, so that a
// typo is a bad command line rather than a server away.
func (f *cmdFlags) checkServer() error {
	u, err := url.Parse(f.serverURL())
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" {
		return usageError("--server (or TASKWIRE_SERVER) must be an http:// or https:// URL or a host:port, not %q", f.serverURL())
	}
	return nil
}

// checkToken refuses a token that no Authorization header can carry (a
// control character, such as the newline of a file read whole), which
// would otherwise look like a server that cannot be reached. The message
// does not quote the token.
func (f *cmdFlags) checkToken() error {
	if strings.ContainsFunc(f.tokenValue(), func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
		return usageError("--token (or TASKWIRE_TOKEN) must not hold control characters, such as a newline")
	}
	return nil
}

// tokenValue returns the token of --token, else TASKWIRE_TOKEN.
func (f *cmdFlags) tokenValue() string {
	return firstOf(f.token, f.cio.getenv("TASKWIRE_TOKEN"))
}

// client returns a client of the server named by --server, TASKWIRE_SERVER
// or the default, with --token or TASKWIRE_TOKEN.
func (f *cmdFlags) client() *client.Client {
	return client.New(f.serverURL(), client.Options{Token: f.tokenValue()})
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// withExitCode gives err the exit status scripts rely on.
func withExitCode(err error) error {
	var ee exitError
	if err == nil || errors.As(err, &ee) || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return exitError{code: exitStatus(err), err: err}
}

// exitStatus returns the exit status of a failed call.
func exitStatus(err error) int {
	switch {
	case client.IsNotFound(err) || client.IsNotRegistered(err):
		return exitNotFound
	case client.IsConflict(err):
		return exitConflict
	case client.IsNotAllowed(err) || client.IsUnauthorized(err):
		return exitNotAllowed
	case client.IsUnavailable(err) || client.IsRateLimited(err) || unreachable(err):
		return exitUnavailable
	}
	return exitServer
}

// unreachable reports whether err is a failed HTTP exchange (connection
// refused, reset, timed out) or a gateway's 502/503/504.
func unreachable(err error) bool {
	var ue *url.Error
	var h *client.HTTPError
	switch {
	case errors.As(err, &ue):
		return true
	case errors.As(err, &h):
		return h.StatusCode == 502 || h.StatusCode == 503 || h.StatusCode == 504
	}
	return false
}

// printJSON writes v as one line of JSON, terminal controls escaped.
func printJSON(w io.Writer, v any) error {
	return writeJSON(w, v, "")
}

// printIndented writes v as indented JSON, terminal controls escaped.
func printIndented(w io.Writer, v any) error {
	return writeJSON(w, v, "  ")
}

func writeJSON(w io.Writer, v any, indent string) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(safeJSON(buf.Bytes()))
	return err
}

// jsonObject checks that s is a JSON object (for --metadata).
func jsonObject(flagName, s string) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil || m == nil {
		return nil, usageError("--%s must be a JSON object, e.g. '{\"key\":\"value\"}'", flagName)
	}
	return json.RawMessage(s), nil
}

// statusOf is a task status given on the command line.
func statusOf(s string) (taskwire.Status, error) {
	if s == "" {
		return "", nil
	}
	return taskwire.Status(s), checkEnum[taskwire.ListParams]("status", "status", s)
}
