//go:build race

package faults_test

// raceEnabled is true when the tests run under the race detector, which
// makes everything several times slower: the tests use smaller counts.
const raceEnabled = true
