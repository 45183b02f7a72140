package sshtun

import "fmt"

// UnmarshalText reads a state's name, as MarshalText writes it: a
// HostState read back from JSON (a forwarder's stats socket).
func (s *State) UnmarshalText(b []byte) error {
	for st := StateConnecting; st <= StateClosed; st++ {
		if st.String() == string(b) {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("ssh state %q: want connecting, connected, reconnecting or closed", b)
}
