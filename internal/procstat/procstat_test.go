//go:build linux

package procstat

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestReaders reads this process, the machine, and a grandchild that burns some CPU and then sleeps: it is
// among the descendants with the CPU it used; this process is not.
func TestReaders(t *testing.T) {
	if rss, err := ResidentBytes(os.Getpid()); err != nil || rss <= 0 {
		t.Errorf("ResidentBytes(self) = %d, %v", rss, err)
	}
	busy0, err := MachineCPUTime()
	if err != nil || busy0 <= 0 {
		t.Fatalf("MachineCPUTime = %v, %v", busy0, err)
	}
	// The outer shell starts the inner one, tells its PID and waits for it.
	cmd := exec.Command("sh", "-c", `sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; exec sleep 30' & echo $!; wait`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscan(out, &pid); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := Descendants(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := d[os.Getpid()]; ok {
			t.Fatal("Descendants includes the root")
		}
		own, err := CPUTime(pid)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := d[pid]; ok && got == own && own >= 20*time.Millisecond {
			break // the loop has run long enough to show
		} else if time.Now().After(deadline) {
			t.Fatalf("Descendants = %v; the grandchild %d has used %v", d, pid, own)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if busy1, _ := MachineCPUTime(); busy1 <= busy0 {
		t.Errorf("the machine's busy time went from %v to %v while a child used CPU", busy0, busy1)
	}
	if SelfCPUTime() <= 0 {
		t.Error("SelfCPUTime is 0")
	}
	// The grandchild is one thread named after its command (sh until it execs sleep), with the CPU it used.
	if th, err := Threads(pid); err != nil || len(th) != 1 || (th[pid].Name != "sh" && th[pid].Name != "sleep") || th[pid].CPU < 20*time.Millisecond {
		t.Errorf("Threads(grandchild) = %v, %v; want one thread, sh or sleep, with its CPU time", th, err)
	}
	if th, err := Threads(os.Getpid()); err != nil || len(th) < 2 {
		t.Errorf("Threads(self) = %v, %v; a Go test runs several threads", th, err)
	}
	if args, err := Cmdline(os.Getpid()); err != nil || fmt.Sprint(args) != fmt.Sprint(os.Args) {
		t.Errorf("Cmdline(self) = %q, %v; want %q", args, err, os.Args)
	}
}
