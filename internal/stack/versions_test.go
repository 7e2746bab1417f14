package stack

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestVersionsArePinnedOnce checks that stack/kafka/pom.xml and tools/go.mod
// name the versions of versions.go.
func TestVersionsArePinnedOnce(t *testing.T) {
	root, err := FindRoot("")
	if err != nil {
		t.Fatal(err)
	}
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	m := regexp.MustCompile(`<kafka\.version>([^<]+)</kafka\.version>`).FindStringSubmatch(read("stack/kafka/pom.xml"))
	if m == nil || m[1] != KafkaVersion {
		t.Errorf("stack/kafka/pom.xml pins Kafka %v, KafkaVersion is %s", m, KafkaVersion)
	}
	m = regexp.MustCompile(`(?m)^\s*github\.com/nats-io/nats-server/v2 (v\S+)`).FindStringSubmatch(read("tools/go.mod"))
	if m == nil || m[1] != NATSServerVersion {
		t.Errorf("tools/go.mod pins nats-server %v, NATSServerVersion is %s", m, NATSServerVersion)
	}
}
