# Fuzzing: each target runs for FUZZTIME (at least a minute), one at a
# time, since `go test -fuzz` takes a single target. A crasher is written
# to the package's testdata/fuzz/<Target>/ and then runs with `go test`
# as a seed, so fix it and keep the file.
FUZZTIME ?= 1m
# Minimizing each new input may take the engine up to a minute (the seed
# corpus holds values nested 9,000 deep), during which nothing else runs;
# a shorter bound keeps the time for fuzzing.
MINIMIZE ?= 10s

.PHONY: fuzz test

fuzz:
	go test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(MINIMIZE) ./internal/rpc/
	go test -run '^$$' -fuzz '^FuzzParams$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(MINIMIZE) ./internal/rpc/
	go test -run '^$$' -fuzz '^FuzzMethodParams$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(MINIMIZE) ./internal/rpc/
	go test -run '^$$' -fuzz '^FuzzRequest$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(MINIMIZE) ./internal/rpc/
	go test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(MINIMIZE) ./internal/auth/
	go test -run '^$$' -fuzz '^FuzzParseRateLimit$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(MINIMIZE) ./internal/service/
	go test -run '^$$' -fuzz '^FuzzSSEQuery$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(MINIMIZE) ./internal/events/
	go test -run '^$$' -fuzz '^FuzzResultID$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(MINIMIZE) ./internal/server/

test:
	go test ./...
