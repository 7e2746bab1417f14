// Package compose holds docker-compose.yml, the definition of the wikiflow stack for
// machines with Docker, and the tests that keep it in agreement with the native
// stack: the ports of internal/stack, the defaults of the binary's flags, the names
// in internal/wire, the versions pinned for the native brokers, and the Dockerfile the
// pipeline images are built from. The package has no Go API.
package compose
