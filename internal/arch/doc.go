// Package arch holds the test that keeps the module's layout what ARCHITECTURE.md
// says it is: stages import only internal/ (never another stage, never lab/), and
// internal/ imports neither stages nor lab/.
package arch
