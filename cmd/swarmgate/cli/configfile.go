package cli

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
)

// A configuration file holds serve's flags, one a line: the flag's name, then its value (the rest of the line,
// trimmed). Blank lines and lines starting with # are skipped; a repeatable flag (trusted-proxy) may appear
// on several lines; a boolean flag takes true or false. Flags on the command line override the file. One
// definition of every setting, its default, help text and checks, serves both. docs/swarmgate.conf is the
// documented example (a test loads it).

// configFlag is the flag naming the file.
const configFlag = "config"

// configPath finds -config FILE or --config=FILE among args, before the flags are parsed.
func configPath(args []string) (string, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != configFlag {
			continue
		}
		if hasValue {
			return value, nil
		}
		if i+1 >= len(args) {
			return "", fmt.Errorf("%w: -%s needs a file", errBadFlag, configFlag)
		}
		return args[i+1], nil
	}
	return "", nil
}

// loadConfigFile sets fs's flags from the file at path.
func loadConfigFile(fs *flag.FlagSet, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: -%s: %v", errBadFlag, configFlag, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, _ := strings.Cut(line, " ")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if name == configFlag {
			return fmt.Errorf("%w: %s:%d: a configuration file cannot name another", errBadFlag, path, n)
		}
		if fs.Lookup(name) == nil {
			return fmt.Errorf("%w: %s:%d: no setting %q (the settings are serve's flags: swarmgate serve -h)", errBadFlag, path, n, name)
		}
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("%w: %s:%d: %s %q: %v", errBadFlag, path, n, name, value, err)
		}
	}
	return sc.Err()
}
