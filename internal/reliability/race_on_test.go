//go:build race

package reliability_test

// raceDetector is true in -race builds, whose pauses are long and uneven.
const raceDetector = true
