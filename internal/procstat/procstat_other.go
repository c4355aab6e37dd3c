//go:build !linux

package procstat

import "time"

func ResidentBytes(int) (int64, error)               { return 0, ErrUnsupported }
func CPUTime(int) (time.Duration, error)             { return 0, ErrUnsupported }
func Descendants(int) (map[int]time.Duration, error) { return nil, ErrUnsupported }
func MachineCPUTime() (time.Duration, error)         { return 0, ErrUnsupported }
func Threads(int) (map[int]Thread, error)            { return nil, ErrUnsupported }
func Cmdline(int) ([]string, error)                  { return nil, ErrUnsupported }
func SelfCPUTime() time.Duration                     { return 0 }

// Thread is one thread of a process: its name and CPU time.
type Thread struct {
	Name string
	CPU  time.Duration
}
