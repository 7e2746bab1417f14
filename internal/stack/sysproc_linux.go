package stack

import "syscall"

// childAttr puts a Proc in its own process group and kills it when the calling
// program dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
