package bench

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ClockTicks is the kernel's USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on every Linux architecture Go supports).
const ClockTicks = 100

// ProcSample is what one look at /proc/<pid> tells about a process.
type ProcSample struct {
	// PeakRSS is VmHWM, the peak resident set size, in bytes.
	PeakRSS int64
	// RSS is VmRSS, the current resident set size, in bytes.
	RSS int64
	// CPUSeconds is utime+stime: CPU time used so far, user and system.
	CPUSeconds float64
}

// ParseStatusKB returns the value of a "Name:   1234 kB" line of /proc/<pid>/status
// in bytes.
func ParseStatusKB(status, name string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != name {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0, fmt.Errorf("status field %s: empty", name)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status field %s: %w", name, err)
		}
		if len(f) > 1 && strings.EqualFold(f[1], "kB") {
			n *= 1024
		}
		return n, nil
	}
	return 0, fmt.Errorf("status field %s: missing", name)
}

// ParseStatCPU returns utime+stime in clock ticks from the content of
// /proc/<pid>/stat. The command name (field 2) may hold spaces and parentheses, so
// the fields are counted from the last ')'.
func ParseStatCPU(stat string) (int64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	// After the name: state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt
	// majflt cmajflt utime(14) stime(15): indexes 11 and 12 here.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the name, want at least 13", len(f))
	}
	u, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat utime: %w", err)
	}
	s, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat stime: %w", err)
	}
	return u + s, nil
}

// ReadProc samples /proc/<pid>/status and /proc/<pid>/stat.
func ReadProc(pid int) (ProcSample, error) {
	var s ProcSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	if s.PeakRSS, err = ParseStatusKB(string(status), "VmHWM"); err != nil {
		return s, err
	}
	if s.RSS, err = ParseStatusKB(string(status), "VmRSS"); err != nil {
		return s, err
	}
	ticks, err := ParseStatCPU(string(stat))
	if err != nil {
		return s, err
	}
	s.CPUSeconds = float64(ticks) / ClockTicks
	return s, nil
}

// ParseCPUModel returns the first "model name" of /proc/cpuinfo ("" when absent).
func ParseCPUModel(cpuinfo string) string {
	sc := bufio.NewScanner(strings.NewReader(cpuinfo))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// ParseMemTotal returns MemTotal of /proc/meminfo in bytes.
func ParseMemTotal(meminfo string) (int64, error) {
	return ParseStatusKB(meminfo, "MemTotal")
}
