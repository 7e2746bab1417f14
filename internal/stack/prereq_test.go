package stack

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// host returns a Host that has the given programs, Java of the given major
// version and, when sudo, password-less sudo.
func host(goos string, uid int, java int, sudo bool, have ...string) Host {
	return Host{GOOS: goos, UID: uid, JavaMajor: func() int { return java }, CanSudo: func() bool { return sudo },
		LookPath: func(name string) (string, error) {
			for _, h := range have {
				if h == name {
					return "/usr/bin/" + name, nil
				}
			}
			return "", errors.New("not found")
		}}
}

func TestPlanFor(t *testing.T) {
	brokers := []Tool{ToolRedis, ToolJava, ToolMaven}
	const aptInstall = "env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "
	cases := []struct {
		name     string
		h        Host
		tools    []Tool
		commands []string
		manual   string
		missing  int
	}{
		{"nothing missing", host("linux", 1000, 17, false, "redis-server", "java", "mvn"), brokers, nil, "", 0},
		{"root on Debian", host("linux", 0, 17, false, "apt-get", "java", "mvn"), brokers,
			[]string{"apt-get update -qq", aptInstall + "redis-server"}, "", 1},
		{"old java counts as missing", host("linux", 0, 11, false, "apt-get", "java", "mvn", "redis-server"), brokers,
			[]string{"apt-get update -qq", aptInstall + "default-jre-headless"}, "", 1},
		{"user with password-less sudo", host("linux", 1000, 0, true, "apt-get", "sudo"), brokers,
			[]string{"sudo -n apt-get update -qq", "sudo -n " + aptInstall + "redis-server default-jre-headless maven"}, "", 3},
		{"user whose sudo asks a password", host("linux", 1000, 17, false, "apt-get", "sudo", "java", "mvn"), brokers,
			nil, "sudo apt-get install -y redis-server", 1},
		{"user without sudo", host("linux", 1000, 17, true, "apt-get", "java", "mvn"), brokers,
			nil, "sudo apt-get install -y redis-server", 1},
		{"macOS with Homebrew", host("darwin", 501, 0, false, "brew", "redis-server"), append(brokers, TestTools...),
			[]string{"brew install openjdk@17 maven jq prometheus kcat", "brew install --cask chromium"}, "", 6},
		{"macOS without Homebrew", host("darwin", 501, 17, false, "java", "mvn"), brokers,
			nil, "install Homebrew (https://brew.sh), then: brew install redis", 1},
		{"other Linux", host("linux", 0, 17, false, "java", "mvn"), brokers,
			nil, "install redis-server with this system's package manager (on Debian/Ubuntu: sudo apt-get install -y redis-server)", 1},
		{"test tools", host("linux", 0, 17, false, "apt-get", "java", "mvn", "redis-server"), append(brokers, TestTools...),
			[]string{"apt-get update -qq", aptInstall + "jq prometheus chromium kcat"}, "", 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := PlanFor(c.h, c.tools)
			var got []string
			if len(p.Refresh) > 0 {
				got = append(got, strings.Join(p.Refresh, " "))
			}
			for _, cmd := range p.Commands {
				got = append(got, strings.Join(cmd, " "))
			}
			if strings.Join(got, "\n") != strings.Join(c.commands, "\n") {
				t.Errorf("commands\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.commands, "\n"))
			}
			if p.Manual != c.manual {
				t.Errorf("manual %q, want %q", p.Manual, c.manual)
			}
			if len(p.Missing) != c.missing {
				t.Errorf("%d missing, want %d", len(p.Missing), c.missing)
			}
		})
	}
}

func TestEnsureToolsSaysWhatToRun(t *testing.T) {
	err := EnsureTools(context.Background(), host("linux", 1000, 17, false, "apt-get", "java", "mvn"), []Tool{ToolRedis, ToolJava}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "run: sudo apt-get install -y redis-server") || !strings.Contains(err.Error(), "redis-server: Redis holds the counters") {
		t.Errorf("error %v", err)
	}
	if err := EnsureTools(context.Background(), host("linux", 1000, 21, false, "java", "redis-server"), []Tool{ToolRedis, ToolJava}, io.Discard); err != nil {
		t.Errorf("nothing to install: %v", err)
	}
}

func TestJavaVersionParse(t *testing.T) {
	for out, want := range map[string]string{`openjdk version "17.0.15" 2025-04-15`: "17", `java version "1.8.0_392"`: "1",
		`openjdk version "21" 2023-09-19`: "21"} {
		if m := javaVersion.FindStringSubmatch(out); m == nil || m[1] != want {
			t.Errorf("%q: %v, want %s", out, m, want)
		}
	}
}
