package procstat

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on every Linux architecture Go supports.
const clockTicks = 100

// ResidentBytes reads VmRSS from /proc/PID/status.
func ResidentBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("procstat: %w", err)
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
	return 0, fmt.Errorf("procstat: no VmRSS in /proc/%d/status", pid)
}

// CPUTime reads the user and system CPU time a process has used from /proc/PID/stat.
func CPUTime(pid int) (time.Duration, error) {
	st, err := readStat(pid)
	return st.cpu, err
}

// stat is what /proc/PID/stat says that the readers here need.
type stat struct {
	name string // the command name, comm
	ppid int
	cpu  time.Duration // user and system
}

func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, fmt.Errorf("procstat: %w", err)
	}
	return parseStat(b, pid)
}

// parseStat reads a /proc/PID/stat or /proc/PID/task/TID/stat file's text.
func parseStat(b []byte, pid int) (stat, error) {
	bad := fmt.Errorf("procstat: unexpected /proc/%d/stat", pid)
	// The command name, field 2, is in parentheses and may hold spaces; ppid is field 4, utime and stime are
	// fields 14 and 15.
	lp, i := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if lp < 0 || i < lp {
		return stat{}, bad
	}
	fields := bytes.Fields(b[i+1:]) // fields[0] is field 3
	if len(fields) < 13 {
		return stat{}, bad
	}
	ppid, err := strconv.Atoi(string(fields[1]))
	if err != nil {
		return stat{}, bad
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return stat{}, bad
		}
		ticks += n
	}
	return stat{name: string(b[lp+1 : i]), ppid: ppid, cpu: time.Duration(ticks) * time.Second / clockTicks}, nil
}

// Thread is one thread of a process: its name (/proc's comm, at most 15 bytes) and CPU time.
type Thread struct {
	Name string
	CPU  time.Duration
}

// Threads reads every thread of a process, by thread ID. A thread that exits while it is read is left out.
func Threads(pid int) (map[int]Thread, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tids, err := numbered(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[int]Thread, len(tids))
	for _, tid := range tids {
		b, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", dir, tid))
		if err != nil {
			continue
		}
		if st, err := parseStat(b, pid); err == nil {
			out[tid] = Thread{Name: st.name, CPU: st.cpu}
		}
	}
	return out, nil
}

// numbered lists the entries of a /proc directory whose names are numbers (processes, or a process's
// threads).
func numbered(dir string) ([]int, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("procstat: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("procstat: %w", err)
	}
	out := make([]int, 0, len(names))
	for _, n := range names {
		if id, err := strconv.Atoi(n); err == nil {
			out = append(out, id)
		}
	}
	return out, nil
}

// Cmdline reads a process's command line.
func Cmdline(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, fmt.Errorf("procstat: %w", err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), nil
}

// Descendants returns the CPU time of every live process descended from root (root itself left out), by
// PID. A process that exits while it is read is left out.
func Descendants(root int) (map[int]time.Duration, error) {
	pids, err := numbered("/proc")
	if err != nil {
		return nil, err
	}
	all := make(map[int]stat, len(pids))
	for _, pid := range pids {
		if st, err := readStat(pid); err == nil {
			all[pid] = st
		}
	}
	out := map[int]time.Duration{}
	for pid, st := range all {
		for p, hops := st.ppid, 0; p > 0 && hops < len(all); p, hops = all[p].ppid, hops+1 {
			if p == root {
				out[pid] = st.cpu
				break
			}
			if _, ok := all[p]; !ok {
				break
			}
		}
	}
	return out, nil
}

// MachineCPUTime reads the CPU time all processors have spent busy (neither idle nor waiting for I/O) from
// /proc/stat.
func MachineCPUTime() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("procstat: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	fields := bytes.Fields(line)
	if len(fields) < 6 || string(fields[0]) != "cpu" {
		return 0, fmt.Errorf("procstat: unexpected /proc/stat")
	}
	var busy int64
	for i, f := range fields[1:] {
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("procstat: unexpected /proc/stat")
		}
		if i != 3 && i != 4 && i < 8 { // idle, iowait; guest times are already counted in user
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}

// SelfCPUTime is the CPU time this process has used, every thread's.
func SelfCPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
