# Fuzzing: each target runs for FUZZTIME (at least a minute), one at a
# time, since `go test -fuzz` takes a single target. A crasher is written
# to the package's testdata/fuzz/<Target>/ and then runs with `go test`
# as a seed, so fix it and keep the file.
FUZZTIME ?= 1m

.PHONY: fuzz test

fuzz:
	go test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/rpc/
	go test -run '^$$' -fuzz '^FuzzParams$$' -fuzztime $(FUZZTIME) ./internal/rpc/
	go test -run '^$$' -fuzz '^FuzzMethodParams$$' -fuzztime $(FUZZTIME) ./internal/rpc/
	go test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/auth/

test:
	go test ./...
