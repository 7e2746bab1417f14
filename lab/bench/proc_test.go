package bench

import (
	"os"
	"testing"
)

const statusSample = `Name:	wikiflow
Umask:	0022
State:	S (sleeping)
VmPeak:	 1262000 kB
VmHWM:	   36296 kB
VmRSS:	   30120 kB
Threads:	9
`

func TestParseStatusKB(t *testing.T) {
	tests := []struct {
		field   string
		want    int64
		wantErr bool
	}{
		{"VmHWM", 36296 * 1024, false},
		{"VmRSS", 30120 * 1024, false},
		{"Threads", 9, false},
		{"VmSwap", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseStatusKB(statusSample, tt.field)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseStatusKB(%s) = %d, %v; want %d, error %v", tt.field, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    int64
		wantErr bool
	}{
		{"plain", "4242 (wikiflow) S 1 4242 4242 0 -1 4194560 5000 0 0 0 150 37 0 0 20 0 9 0 100 1000 500", 187, false},
		{"name with spaces and parens", "77 (a b) c)) R 1 77 77 0 -1 0 1 2 3 4 1000 1 0 0 20 0 1 0 5 6 7", 1001, false},
		{"truncated", "1 (x) S 1 2 3", 0, true},
		{"no name", "garbage", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseStatCPU(tt.stat)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: ParseStatCPU = %d, %v; want %d, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestReadProcSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc on this system")
	}
	buf := make([]byte, 8<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PeakRSS < 8<<20 || s.RSS <= 0 || s.PeakRSS < s.RSS {
		t.Errorf("ReadProc = %+v: peak must cover the 8 MiB touched and the current RSS", s)
	}
	if s.CPUSeconds < 0 {
		t.Errorf("negative CPU time %v", s.CPUSeconds)
	}
	_ = buf[len(buf)-1]
}

func TestParseCPUModelAndMemTotal(t *testing.T) {
	cpuinfo := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
	if got := ParseCPUModel(cpuinfo); got != "AMD EPYC 7B13" {
		t.Errorf("ParseCPUModel = %q", got)
	}
	if got := ParseCPUModel("processor: 0\n"); got != "" {
		t.Errorf("ParseCPUModel without model = %q", got)
	}
	got, err := ParseMemTotal("MemTotal:       24683520 kB\nMemFree:         1 kB\n")
	if err != nil || got != 24683520*1024 {
		t.Errorf("ParseMemTotal = %d, %v", got, err)
	}
}
