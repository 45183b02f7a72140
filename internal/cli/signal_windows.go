package cli

import "os"

// signalProcess ends the process: Windows has no SIGTERM, so both cases
// terminate it.
func signalProcess(pid int, kill bool) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

func signalName(kill bool) string { return "TerminateProcess" }

// processGone reports whether pid has exited.
func processGone(pid int) bool {
	_, err := os.FindProcess(pid)
	return err != nil
}
