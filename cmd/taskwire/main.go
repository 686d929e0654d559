// Command taskwire is the task coordination server and its command line.
//
//	taskwire serve [flags]     run the server (embedded SQLite by default)
//	taskwire token new [flags] make a token for the tokens file
//	taskwire version           print the version
//	taskwire [--server URL] [--token T] create|get|list|complete|workers|events|work|bench
//	                           client commands (cli.go); --server and --token
//	                           also go after the command name, and win there
//
// Run `taskwire serve --help` for the flags; every flag also reads a
// TASKWIRE_* environment variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=..."; by
// default it comes from the module's build information.
var version = ""

func main() {
	ctx, stop := signalContext()
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(report(os.Stderr, err))
}

// signalContext returns a context that ends at the first SIGINT or
// SIGTERM: commands then stop, finishing what must not be cut short (a
// server's requests in flight, bench deleting its tasks). The signals then
// get their default action back, so a second one ends the process at once.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-sigs:
			signal.Stop(sigs) // before the context ends: nothing it starts sees the signal caught
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		cancel()
	}
}

// report writes the error run returned to w and returns the exit status:
// 0 for none (or help), an exitError's own, else 1. The error may carry a
// server's message, which is anyone's input: its terminal controls are
// shown as escapes, line by line.
func report(w io.Writer, err error) int {
	var exit exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &exit):
		fmt.Fprintln(w, "taskwire:", visibleLines(exit.err.Error()))
		return exit.code
	}
	fmt.Fprintln(w, "taskwire:", visibleLines(err.Error()))
	return 1
}

// exitError carries a specific exit status (2 for usage errors).
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }

func usageError(format string, args ...any) error {
	return exitError{code: 2, err: fmt.Errorf(format, args...)}
}

const usage = `taskwire: a task coordination server speaking JSON-RPC 2.0.

Usage:
  taskwire serve [flags]   run the server (embedded SQLite unless --redis and --postgres)
  taskwire token new       make a token and the line of the tokens file for it
  taskwire version         print the version

Example:
  taskwire serve --listen 127.0.0.1:7700 --data ./taskwire-data

Run 'taskwire serve --help' for the flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	conn, args, err := connectionFlags(args)
	if err != nil {
		printUsage(stderr)
		return err
	}
	if len(args) == 0 {
		printUsage(stderr)
		return usageError("a command is required")
	}
	if cmd, ok := cliCommands[args[0]]; ok {
		// The command's own flags come after, so that they win.
		return cmd.run(ctx, newCLIIO(stdout, stderr), append(conn, args[1:]...))
	}
	if len(conn) > 0 {
		printUsage(stderr)
		return usageError("%s goes with a client command, not %q", conn[0], args[0])
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "token":
		return token(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, buildVersion())
		return nil
	case "help", "-h", "--help":
		printUsage(stdout)
		return nil
	}
	printUsage(stderr)
	return usageError("unknown command %q", args[0])
}

// connectionFlags splits the --server and --token flags (-flag or
// --flag, with the value after = or as the next argument) that come
// before the command name from the rest of args.
func connectionFlags(args []string) (conn, rest []string, err error) {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		name, _, inline := strings.Cut(strings.TrimPrefix(args[0][1:], "-"), "=")
		if name != "server" && name != "token" {
			break
		}
		n := 2
		if inline {
			n = 1
		}
		if len(args) < n {
			return nil, nil, usageError("flag needs an argument: %s", args[0])
		}
		conn, args = append(conn, args[:n]...), args[n:]
	}
	return conn, args, nil
}

// parseFlags parses args with fs. -h or --help prints usage and the flags
// on stdout and returns flag.ErrHelp (exit status 0); a bad flag prints
// them on stderr and is exit status 2.
func parseFlags(fs *flag.FlagSet, usage string, args []string, stdout, stderr io.Writer) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		printFlags(fs, usage, stdout)
		return flag.ErrHelp
	}
	printFlags(fs, usage, stderr)
	return exitError{code: 2, err: err}
}

// printFlags writes usage and the flags of fs to w.
func printFlags(fs *flag.FlagSet, usage string, w io.Writer) {
	fmt.Fprint(w, usage)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
