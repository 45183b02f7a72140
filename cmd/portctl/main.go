// Command portctl makes ports visible and controllable. See the README.
package main

import (
	"os"

	"github.com/portctl/portctl/internal/cli"
	"github.com/portctl/portctl/internal/term"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], term.System()))
}
