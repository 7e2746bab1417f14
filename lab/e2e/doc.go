// Package e2e holds wikiflow's end-to-end tests: real recordings in through the
// emulator, every stage on the real brokers, numbers out of the API, compared with
// counts computed independently from the same file.
package e2e
