package main

import (
	"os"
	"testing"
)

// envAsMain makes the test binary act as the wikiflow command, for tests that
// need a separate process (see runProcess).
const envAsMain = "WIKIFLOW_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envAsMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}
