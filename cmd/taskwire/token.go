package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/taskwire/taskwire/internal/auth"
)

const tokenUsage = `Usage: taskwire token new --name NAME --role admin|worker|producer [--worker-id ID]

Prints a new random token (256 bits from crypto/rand) and the line to add
to the tokens file that 'taskwire serve --tokens FILE' reads. The line
holds only the token's SHA-256, so the file never needs the token itself.
Give the token to the client (its Authorization: Bearer header); it is not
shown again. After editing the file, send SIGHUP to the server to reload it:
connections stay up, but a WebSocket whose token was removed or changed
is closed.

Example:
  taskwire token new --name w1 --role worker --worker-id w1

Flags:
`

// token runs `taskwire token new`.
func token(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token new", flag.ContinueOnError)
	var e auth.Entry
	fs.StringVar(&e.Name, "name", "", "the token's name: logs, events and rate limits show it")
	fs.Func("role", "admin, worker or producer", func(s string) error { e.Role = auth.Role(s); return nil })
	fs.StringVar(&e.WorkerID, "worker-id", "", "the worker a worker-role token acts as (role worker only)")
	if len(args) == 0 || args[0] != "new" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			printFlags(fs, tokenUsage, stdout)
			return flag.ErrHelp
		}
		printFlags(fs, tokenUsage, stderr)
		return usageError("token: the only subcommand is `new`")
	}
	if err := parseFlags(fs, tokenUsage, args[1:], stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("token new takes no arguments, got %q", fs.Args())
	}
	plain, err := auth.NewToken()
	if err != nil {
		return err
	}
	e.SHA256 = auth.Hash(plain)
	if err := e.Validate(); err != nil {
		return usageError("token new: %v", err)
	}
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Token (give it to the client; it is not shown again):\n  %s\n", plain)
	fmt.Fprintf(stdout, "Add this line to the tokens file (a JSON array):\n  %s\n", line)
	return nil
}
