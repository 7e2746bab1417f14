package bench

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// PortsEnv names the environment variable that confines FreePort to a range of
// ports, "low-high" (such as 25000-26999), for machines where several runs share
// the loopback ports; unset, FreePort takes a port the kernel chooses.
const PortsEnv = "WIKIFLOW_BENCH_PORTS"

var portNext struct {
	sync.Mutex
	n int
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago, within
// the range of PortsEnv when it is set.
func FreePort() (int, error) {
	low, high, err := portRange(os.Getenv(PortsEnv))
	if err != nil {
		return 0, err
	}
	if low == 0 {
		return listenFree(0)
	}
	portNext.Lock()
	defer portNext.Unlock()
	span := high - low + 1
	for range span {
		p := low + portNext.n%span
		portNext.n++
		if got, err := listenFree(p); err == nil {
			return got, nil
		}
	}
	return 0, fmt.Errorf("no free port in %d-%d (%s)", low, high, PortsEnv)
}

func listenFree(port int) (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portRange parses "low-high"; an empty s is no range (0, 0).
func portRange(s string) (low, high int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if ok {
		low, err = strconv.Atoi(strings.TrimSpace(a))
		if err == nil {
			high, err = strconv.Atoi(strings.TrimSpace(b))
		}
	}
	if !ok || err != nil || low < 1 || high > 65535 || low > high {
		return 0, 0, fmt.Errorf("%s=%q: want low-high, such as 25000-26999", PortsEnv, s)
	}
	return low, high, nil
}
