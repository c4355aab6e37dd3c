package trackerload

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on every Linux architecture Go supports.
const clockTicks = 100

// residentBytes reads VmRSS from /proc/PID/status.
func residentBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("trackerload: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("VmRSS:")) {
			continue
		}
		fields := bytes.Fields(line[len("VmRSS:"):])
		if len(fields) != 2 || string(fields[1]) != "kB" {
			break
		}
		kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
		if err != nil {
			break
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("trackerload: no VmRSS in /proc/%d/status", pid)
}

// cpuTime reads the user and system CPU time a process has used from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("trackerload: %w", err)
	}
	// The command name, field 2, is in parentheses and may hold spaces; utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("trackerload: unexpected /proc/%d/stat", pid)
	}
	fields := bytes.Fields(b[i+1:]) // fields[0] is field 3
	if len(fields) < 13 {
		return 0, fmt.Errorf("trackerload: unexpected /proc/%d/stat", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("trackerload: unexpected /proc/%d/stat", pid)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// machineCPUTime reads the CPU time all processors have spent busy (neither idle nor waiting for I/O) from
// /proc/stat, so that a run can tell how much other processes took from the machine.
func machineCPUTime() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("trackerload: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	fields := bytes.Fields(line)
	if len(fields) < 6 || string(fields[0]) != "cpu" {
		return 0, fmt.Errorf("trackerload: unexpected /proc/stat")
	}
	var busy int64
	for i, f := range fields[1:] {
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("trackerload: unexpected /proc/stat")
		}
		if i != 3 && i != 4 && i < 8 { // idle, iowait; guest times are already counted in user
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}

// selfCPUTime is the CPU time the load generator's process has used.
func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childAttr makes a child process die with the benchmark, even when the benchmark is killed.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
