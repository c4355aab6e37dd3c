// Command swarmgate runs the swarmgate daemon and its tools. See README.md.
package main

import (
	"os"

	"github.com/swarmgate/swarmgate/cmd/swarmgate/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
