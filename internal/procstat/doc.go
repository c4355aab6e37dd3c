// Package procstat reads what the benchmarks report about processes and the machine from Linux's /proc:
// a process's CPU time and resident memory, the CPU time of a process's descendants, and how busy the
// machine's processors were. Elsewhere every reader returns ErrUnsupported.
package procstat

import "errors"

// ErrUnsupported: this system has no /proc to read.
var ErrUnsupported = errors.New("procstat: process CPU time and memory are read from /proc (Linux only)")
