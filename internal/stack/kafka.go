package stack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Kafka is one single-node KRaft broker (broker and controller in one JVM) built
// from stack/kafka: the jars that Maven fetches from pom.xml, server.properties
// with the ports replaced, log4j2.properties.
type Kafka struct {
	// Root is the repository root, where stack/kafka lives.
	Root string
	// Libs is the folder of the Kafka jars.
	Libs string
	// JVMOpts are the JVM options (the ones that every start needs are added).
	JVMOpts []string
	// Port, ControllerPort and SASLPort replace 9092, 9093 and 9094.
	Port, ControllerPort, SASLPort int
	// RunDir receives kafka.properties and Maven's and the formatter's logs.
	RunDir string
	// DataDir is log.dirs.
	DataDir string
	// Name names the node's files in RunDir (default kafka).
	Name string
	// NodeID is node.id in a cluster (0: the single node of server.properties).
	NodeID int
	// Extra are properties appended to server.properties (later ones win).
	Extra string
	// ClusterIDFile holds the cluster id that every node of a cluster formats
	// its storage with (empty: a single node with its own).
	ClusterIDFile string
}

// Kafka returns the stack's broker.
func (c Config) Kafka() Kafka {
	return Kafka{Root: c.Root, Libs: c.KafkaLibs, JVMOpts: c.KafkaJVMOpts, Port: c.Ports.Kafka,
		ControllerPort: c.Ports.KafkaController, SASLPort: c.Ports.KafkaSASL,
		RunDir: c.RunDir(), DataDir: filepath.Join(c.DataDir(), "kafka"), Name: "kafka"}
}

// PropsFile is the broker's configuration file.
func (k Kafka) PropsFile() string { return filepath.Join(k.RunDir, k.name()+".properties") }

func (k Kafka) name() string {
	if k.Name == "" {
		return "kafka"
	}
	return k.Name
}

func (k Kafka) pom() string { return filepath.Join(k.Root, "stack", "kafka", "pom.xml") }

// java returns the JVM's command line up to the main class.
func (k Kafka) java() []string {
	args := append([]string{"java"}, k.JVMOpts...)
	return append(args, "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile="+filepath.Join(k.Root, "stack", "kafka", "log4j2.properties"),
		"-cp", filepath.Join(k.Libs, "*"))
}

// Args is the broker's command line.
func (k Kafka) Args() []string { return append(k.java(), "kafka.Kafka", k.PropsFile()) }

// Signature is what the broker's command line contains.
func (k Kafka) Signature() string { return "kafka.Kafka " + k.PropsFile() }

// stamp holds the checksum of the pom the jars were fetched from.
func (k Kafka) stamp() string { return filepath.Join(filepath.Dir(k.Libs), ".complete") }

// pomSum is the pom's checksum as `cksum <pom.xml` prints it.
func (k Kafka) pomSum() (string, error) {
	b, err := os.ReadFile(k.pom())
	if err != nil {
		return "", fmt.Errorf("kafka: %w", err)
	}
	return fmt.Sprintf("%d %d", Cksum(b), len(b)), nil
}

// LibsCached reports whether the jars of the current pom are in Libs.
func (k Kafka) LibsCached() bool {
	want, err := k.pomSum()
	if err != nil {
		return false
	}
	got, err := os.ReadFile(k.stamp())
	if err != nil || strings.TrimSpace(string(got)) != want {
		return false
	}
	st, err := os.Stat(k.Libs)
	return err == nil && st.IsDir()
}

// Prepare makes the broker ready to start: it fetches the jars once, writes
// kafka.properties and formats the storage when it is new.
func (k Kafka) Prepare(ctx context.Context, out io.Writer) error {
	for _, d := range []string{k.RunDir, k.DataDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("kafka: %w", err)
		}
	}
	if err := k.EnsureLibs(ctx, out); err != nil {
		return err
	}
	tmpl, err := os.ReadFile(filepath.Join(k.Root, "stack", "kafka", "server.properties"))
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	props := strings.NewReplacer(":9092", ":"+strconv.Itoa(k.Port), ":9093", ":"+strconv.Itoa(k.ControllerPort),
		":9094", ":"+strconv.Itoa(k.SASLPort)).Replace(string(tmpl))
	props += "\n# Added by wikiflow stack\nlog.dirs=" + k.DataDir + "\n" + k.Extra
	if err := os.WriteFile(k.PropsFile(), []byte(props), 0o644); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	if _, err := os.Stat(filepath.Join(k.DataDir, "meta.properties")); err == nil {
		return nil
	}
	fmt.Fprintf(out, "%s: formatting the storage in %s\n", k.name(), k.DataDir)
	id, err := k.clusterID()
	if err != nil {
		return err
	}
	format := append(k.java(), "kafka.tools.StorageTool", "format", "-t", id, "-c", k.PropsFile())
	if k.ClusterIDFile == "" {
		format = append(format, "--standalone")
	}
	return runLogged(ctx, k.RunDir, filepath.Join(k.RunDir, k.name()+"-format.log"), out, k.name()+": formatting the storage", format)
}

// clusterID returns the id in ClusterIDFile, writing a new one there first when
// it is missing; without the file, a new id.
func (k Kafka) clusterID() (string, error) {
	if k.ClusterIDFile == "" {
		return ClusterID()
	}
	if b, err := os.ReadFile(k.ClusterIDFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	id, err := ClusterID()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(k.ClusterIDFile, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("kafka: %w", err)
	}
	return id, nil
}

// EnsureLibs fetches the broker's jars with Maven once; a stamp holding the
// checksum of pom.xml makes later calls return at once.
func (k Kafka) EnsureLibs(ctx context.Context, out io.Writer) error {
	if k.LibsCached() {
		return nil
	}
	want, err := k.pomSum()
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("mvn"); err != nil {
		return fmt.Errorf("kafka: Maven (mvn) is needed once to fetch the Kafka jars (Debian: sudo apt-get install -y maven; macOS: brew install maven)")
	}
	if err := os.MkdirAll(k.RunDir, 0o755); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	start := time.Now()
	fmt.Fprintf(out, "kafka: fetching the Kafka %s jars with Maven into %s (once)\n", KafkaVersion, k.Libs)
	tmp := fmt.Sprintf("%s.tmp.%d", k.Libs, os.Getpid())
	os.RemoveAll(tmp)
	mvn := []string{"mvn", "-q", "-B", "-Dstyle.color=never", "-f", k.pom(), "dependency:copy-dependencies", "-DoutputDirectory=" + tmp}
	if err := runLogged(ctx, k.RunDir, filepath.Join(k.RunDir, "maven.log"), out, "kafka: Maven could not fetch the Kafka jars", mvn); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	os.RemoveAll(k.Libs)
	if err := os.Rename(tmp, k.Libs); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	if err := os.WriteFile(k.stamp(), []byte(want+"\n"), 0o644); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	jars, _ := filepath.Glob(filepath.Join(k.Libs, "*.jar"))
	fmt.Fprintf(out, "kafka: %d jars fetched in %s\n", len(jars), seconds(time.Since(start)))
	return nil
}

// runLogged runs args in dir with its output in log; on failure it prints the
// end of the log to out and names it in the error.
func runLogged(ctx context.Context, dir, log string, out io.Writer, what string, args []string) error {
	f, err := os.Create(log)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, f, f
	err = cmd.Run()
	f.Close()
	if err != nil {
		fmt.Fprintln(out, Tail(log, 30))
		return fmt.Errorf("%s (%v; log: %s)", what, err, log)
	}
	return nil
}

// ClusterID returns a random Kafka cluster id: 16 random bytes, URL-safe base64
// without padding, not starting with '-' (as Kafka's own Uuid.randomUuid).
func ClusterID() (string, error) {
	for {
		var raw [16]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", fmt.Errorf("kafka cluster id: %w", err)
		}
		if id := base64.RawURLEncoding.EncodeToString(raw[:]); !strings.HasPrefix(id, "-") {
			return id, nil
		}
	}
}

// Cksum is the POSIX cksum CRC of b (the stamp of the jar cache, shared with
// older launchers that used cksum(1)).
func Cksum(b []byte) uint32 {
	var crc uint32
	update := func(c byte) {
		crc ^= uint32(c) << 24
		for i := 0; i < 8; i++ {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04C11DB7
			} else {
				crc <<= 1
			}
		}
	}
	for _, c := range b {
		update(c)
	}
	for n := len(b); n > 0; n >>= 8 {
		update(byte(n))
	}
	return ^crc
}

// seconds formats d like "1.5s".
func seconds(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }
