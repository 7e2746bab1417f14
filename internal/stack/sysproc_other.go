//go:build !linux

package stack

import "syscall"

// childAttr puts a Proc in its own process group.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
