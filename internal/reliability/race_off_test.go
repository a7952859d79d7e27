//go:build !race

package reliability_test

const raceDetector = false
