//go:build !linux

package trackerload

import (
	"syscall"
	"time"
)

func residentBytes(int) (int64, error)       { return 0, ErrNoProcInfo }
func cpuTime(int) (time.Duration, error)     { return 0, ErrNoProcInfo }
func machineCPUTime() (time.Duration, error) { return 0, ErrNoProcInfo }
func selfCPUTime() time.Duration             { return 0 }
func childAttr() *syscall.SysProcAttr        { return nil }
