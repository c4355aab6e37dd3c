//go:build !linux

package procstat

import "time"

func ResidentBytes(int) (int64, error)               { return 0, ErrUnsupported }
func CPUTime(int) (time.Duration, error)             { return 0, ErrUnsupported }
func Descendants(int) (map[int]time.Duration, error) { return nil, ErrUnsupported }
func MachineCPUTime() (time.Duration, error)         { return 0, ErrUnsupported }
func SelfCPUTime() time.Duration                     { return 0 }
