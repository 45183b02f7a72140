package sockets

import "os"

// ReadSockstat reads /proc/net/sockstat and /proc/net/sockstat6 (whose
// protocols are named TCP6, UDP6…).
func ReadSockstat() (Sockstat, error) {
	out := Sockstat{}
	for _, f := range []string{"/proc/net/sockstat", "/proc/net/sockstat6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		s, err := ParseSockstat(b)
		if err != nil {
			return nil, err
		}
		for k, v := range s {
			out[k] = v
		}
	}
	return out, nil
}
