package netconf

// Read returns the settings of the running Windows host. Windows has no
// privileged ports. The dynamic range is reported as the documented default
// (49152-65535); `netsh int ipv4 show dynamicport tcp` shows a changed one.
func Read() (Host, error) {
	return Host{Ephemeral: defaultIANARange, EphemeralDefault: true}, nil
}
