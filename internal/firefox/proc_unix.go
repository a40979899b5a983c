//go:build unix

package firefox

import (
	"os/exec"
	"syscall"
)

// Firefox forks content, GPU and utility processes; a group of its own
// lets Close kill all of them.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
