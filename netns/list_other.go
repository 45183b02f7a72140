//go:build !linux

package netns

import "errors"

// List returns the host's network namespaces; only Linux has them.
func List() ([]Namespace, int, error) {
	return nil, 0, errors.New("netns: network namespaces are a Linux feature")
}
