package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of /proc's CPU times (USER_HZ, 100 on every Linux
// architecture Go supports).
const userHZ = 100

// procCPU is a process's user+system CPU seconds, all threads, from
// /proc/<pid>/stat.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("cpu of pid %d: %w", pid, err)
	}
	return parseProcStat(string(b))
}

// parseProcStat reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line; the command name may hold spaces and parentheses,
// so fields are counted from the last ')'.
func parseProcStat(s string) (float64, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/<pid>/stat %.80q: no ')' after the command name", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so utime (14) is f[11] and stime (15) f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/<pid>/stat %.80q: %d fields after the name, want at least 13", s, len(f))
	}
	var sum float64
	for _, x := range f[11:13] {
		v, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/<pid>/stat time %q: %w", x, err)
		}
		sum += float64(v)
	}
	return sum / userHZ, nil
}

// systemBusy is the machine's busy CPU seconds since boot, all CPUs, from
// the "cpu" line of /proc/stat: everything but idle and iowait.
func systemBusy() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("system cpu: %w", err)
	}
	return parseSystemBusy(string(b))
}

func parseSystemBusy(s string) (float64, error) {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat first line %.80q: want \"cpu\" and at least 7 times", line)
	}
	var busy float64
	// user nice system idle iowait irq softirq steal [guest guest_nice]:
	// guest time is already inside user, so stop at steal.
	for i, x := range f[1:min(len(f), 9)] {
		v, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat cpu time %q: %w", x, err)
		}
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		busy += float64(v)
	}
	return busy / userHZ, nil
}
