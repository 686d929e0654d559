//go:build race

package main

// raceDetector reports whether the test binary, and so each server process
// the tests start from it, runs under the race detector, whose shadow
// memory makes memory figures meaningless.
const raceDetector = true
