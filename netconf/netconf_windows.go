package netconf

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
)

// Read returns the settings of the running Windows host without running
// any program, so that `portctl info` stays fast: Windows has no
// privileged ports, and the dynamic range is the documented default
// (49152-65535). ReadFull reads the configured range and the excluded port
// ranges with netsh.
func Read() (Host, error) {
	return Host{Ephemeral: defaultIANARange, EphemeralDefault: true, TCPTWReuse: -1, TCPSyncookies: -1}, nil
}

// ReadFull returns what Read does plus what only netsh shows: the TCP
// dynamic port range as `netsh int ipv4 set dynamicport` left it, and in
// Reserved the TCP port ranges excluded from use (`netsh int ipv4 show
// excludedportrange protocol=tcp`: those an administrator added and those
// Hyper-V, WSL or Docker reserve at boot; binding them fails with "access
// permissions"). Windows offers no documented API for either. It runs
// netsh twice, in parallel: expect a tenth of a second or more, which is
// why Read does not. What netsh fails to give keeps its default, and the
// error says what failed.
func ReadFull(ctx context.Context) (Host, error) {
	h, _ := Read()
	var (
		wg              sync.WaitGroup
		dynOut, exclOut []byte
		dynErr, exclErr error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		dynOut, dynErr = exec.CommandContext(ctx, "netsh", "int", "ipv4", "show", "dynamicport", "tcp").Output()
	}()
	go func() {
		defer wg.Done()
		exclOut, exclErr = exec.CommandContext(ctx, "netsh", "int", "ipv4", "show", "excludedportrange", "protocol=tcp").Output()
	}()
	wg.Wait()

	if dynErr == nil {
		r, err := ParseNetshDynamicPort(dynOut)
		if err == nil {
			h.Ephemeral, h.EphemeralDefault = r, false
		}
		dynErr = err
	}
	if exclErr == nil {
		h.Reserved, exclErr = ParseNetshExcluded(exclOut)
	}
	var errs []error
	if dynErr != nil {
		errs = append(errs, fmt.Errorf("netconf: netsh show dynamicport: %w", dynErr))
	}
	if exclErr != nil {
		errs = append(errs, fmt.Errorf("netconf: netsh show excludedportrange: %w", exclErr))
	}
	return h, errors.Join(errs...)
}
