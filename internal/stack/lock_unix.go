package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lock serialises the commands that start or stop processes of one stack (the
// file lock <run>/.lock); the returned function releases it.
func (c Config) lock() (func(), error) {
	if err := os.MkdirAll(c.RunDir(), 0o755); err != nil {
		return nil, fmt.Errorf("run folder: %w", err)
	}
	path := filepath.Join(c.RunDir(), ".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	for deadline := time.Now().Add(300 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			return func() { f.Close() }, nil
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("another stack command holds %s", path)
		}
	}
}
