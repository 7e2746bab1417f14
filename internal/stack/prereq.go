package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
)

// Tool is a program the stack or the tests need, with the package that provides
// it on Debian/Ubuntu (apt-get) and on macOS (Homebrew).
type Tool struct {
	// Command is looked up on PATH.
	Command string
	// Why says what needs it.
	Why string
	// Apt and Brew are the packages that provide it; BrewCask marks a cask.
	Apt, Brew string
	BrewCask  bool
}

// The tools of the native brokers and of the tests.
var (
	ToolRedis  = Tool{Command: "redis-server", Why: "Redis holds the counters", Apt: "redis-server", Brew: "redis"}
	ToolJava   = Tool{Command: "java", Why: fmt.Sprintf("Kafka %s runs on Java %d or newer", KafkaVersion, MinJava), Apt: "default-jre-headless", Brew: "openjdk@17"}
	ToolMaven  = Tool{Command: "mvn", Why: "Maven fetches the Kafka jars once", Apt: "maven", Brew: "maven"}
	ToolJQ     = Tool{Command: "jq", Why: "the tests read NDJSON with jq", Apt: "jq", Brew: "jq"}
	ToolProm   = Tool{Command: "promtool", Why: "the tests check /metrics with promtool", Apt: "prometheus", Brew: "prometheus"}
	ToolChrome = Tool{Command: "chromium", Why: "the browser tests drive headless Chromium", Apt: "chromium", Brew: "chromium", BrewCask: true}
	ToolKcat   = Tool{Command: "kcat", Why: "the tests read ingest's Kafka records with kcat", Apt: "kcat", Brew: "kcat"}
	ToolWrk    = Tool{Command: "wrk", Why: "the benchmark loads the API with wrk", Apt: "wrk", Brew: "wrk"}
)

// TestTools are what the tests check wikiflow against, beside the brokers' tools.
var TestTools = []Tool{ToolJQ, ToolProm, ToolChrome, ToolKcat}

// BenchTools are what the benchmark uses beside the brokers' tools.
var BenchTools = []Tool{ToolWrk}

// Host is what the install decision depends on; [LocalHost] is this machine,
// tests give their own.
type Host struct {
	// GOOS is runtime.GOOS.
	GOOS string
	// UID is the user id (0: root).
	UID int
	// LookPath finds a program (exec.LookPath).
	LookPath func(string) (string, error)
	// JavaMajor returns the major version `java -version` reports (0 if none).
	JavaMajor func() int
	// CanSudo reports whether `sudo -n true` works (sudo without a password).
	CanSudo func() bool
}

// LocalHost returns this machine.
func LocalHost() Host {
	return Host{GOOS: runtime.GOOS, UID: os.Getuid(), LookPath: exec.LookPath, JavaMajor: javaMajor,
		CanSudo: func() bool { return exec.Command("sudo", "-n", "true").Run() == nil }}
}

var javaVersion = regexp.MustCompile(`version "(\d+)`)

func javaMajor() int {
	out, _ := exec.Command("java", "-version").CombinedOutput()
	m := javaVersion.FindSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// Missing returns the tools the host lacks (Java older than MinJava counts as
// missing).
func (h Host) Missing(tools []Tool) []Tool {
	var out []Tool
	for _, t := range tools {
		_, err := h.LookPath(t.Command)
		if err != nil || (t.Command == "java" && h.JavaMajor() < MinJava) {
			out = append(out, t)
		}
	}
	return out
}

// Plan is how the missing tools get installed: the commands to run, or, when
// this host cannot install them itself, the command a person must run.
type Plan struct {
	// Missing are the tools to install.
	Missing []Tool
	// Refresh, when not empty, updates the package lists first; when it fails
	// the install goes on with the lists there are.
	Refresh []string
	// Commands install them, in order.
	Commands [][]string
	// Manual, when not empty, is what to run by hand instead (Commands is empty).
	Manual string
}

// PlanFor decides how to install what the host lacks of tools: apt-get as root
// or with password-less sudo on Debian/Ubuntu, Homebrew on macOS; otherwise
// the exact command to run by hand.
func PlanFor(h Host, tools []Tool) Plan {
	p := Plan{Missing: h.Missing(tools)}
	if len(p.Missing) == 0 {
		return p
	}
	var apt, brew, casks []string
	for _, t := range p.Missing {
		apt = append(apt, t.Apt)
		if t.BrewCask {
			casks = append(casks, t.Brew)
		} else {
			brew = append(brew, t.Brew)
		}
	}
	_, aptErr := h.LookPath("apt-get")
	_, brewErr := h.LookPath("brew")
	switch {
	case h.GOOS == "linux" && aptErr == nil:
		var sudo []string
		if h.UID != 0 {
			_, sudoErr := h.LookPath("sudo")
			if sudoErr != nil || !h.CanSudo() {
				p.Manual = "sudo apt-get install -y " + strings.Join(apt, " ")
				return p
			}
			sudo = []string{"sudo", "-n"}
		}
		install := []string{"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq",
			"--no-install-recommends", "-o", "DPkg::Lock::Timeout=300"}
		p.Refresh = append(sudo, "apt-get", "update", "-qq")
		p.Commands = [][]string{append(append([]string(nil), sudo...), append(install, apt...)...)}
	case h.GOOS == "darwin" && brewErr == nil:
		if len(brew) > 0 {
			p.Commands = append(p.Commands, append([]string{"brew", "install"}, brew...))
		}
		if len(casks) > 0 {
			p.Commands = append(p.Commands, append([]string{"brew", "install", "--cask"}, casks...))
		}
	case h.GOOS == "darwin":
		p.Manual = "install Homebrew (https://brew.sh), then: brew install " + strings.Join(append(brew, casks...), " ")
	default:
		names := make([]string, len(p.Missing))
		for i, t := range p.Missing {
			names[i] = t.Command
		}
		p.Manual = "install " + strings.Join(names, ", ") + " with this system's package manager (on Debian/Ubuntu: sudo apt-get install -y " + strings.Join(apt, " ") + ")"
	}
	return p
}

// EnsureTools installs what the host lacks of tools, saying what and why, and
// fails with the exact command to run where it cannot install them itself.
func EnsureTools(ctx context.Context, h Host, tools []Tool, out io.Writer) error {
	p := PlanFor(h, tools)
	if len(p.Missing) == 0 {
		return nil
	}
	var why []string
	for _, t := range p.Missing {
		why = append(why, fmt.Sprintf("  %s: %s", t.Command, t.Why))
	}
	if p.Manual != "" {
		return fmt.Errorf("missing and not installable from here:\n%s\nrun: %s", strings.Join(why, "\n"), p.Manual)
	}
	fmt.Fprintf(out, "stack: installing what is missing:\n%s\n", strings.Join(why, "\n"))
	if len(p.Refresh) > 0 {
		fmt.Fprintf(out, "stack: running %s\n", strings.Join(p.Refresh, " "))
		cmd := exec.CommandContext(ctx, p.Refresh[0], p.Refresh[1:]...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(out, "stack: %s failed (%v); installing from the package lists there are\n", strings.Join(p.Refresh, " "), err)
		}
	}
	for _, c := range p.Commands {
		fmt.Fprintf(out, "stack: running %s\n", strings.Join(c, " "))
		cmd := exec.CommandContext(ctx, c[0], c[1:]...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(c, " "), err)
		}
	}
	if left := h.Missing(tools); len(left) > 0 {
		var names []string
		for _, t := range left {
			names = append(names, t.Command)
		}
		return errors.New("still missing after the install: " + strings.Join(names, ", ") + javaHint(h, left))
	}
	return nil
}

func javaHint(h Host, left []Tool) string {
	for _, t := range left {
		if t.Command == "java" {
			if n := h.JavaMajor(); n > 0 {
				return fmt.Sprintf(" (java on PATH is %d; Kafka needs %d or newer: make it the default java)", n, MinJava)
			}
		}
	}
	return ""
}
