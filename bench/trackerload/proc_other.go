//go:build !linux

package trackerload

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }
