package servers

import (
	"fmt"
	"os/exec"
	"strings"
	"sync"
)

// Upstream returns the upstream part of a Debian package version, the
// version the server itself reports:
//
//  1. the epoch is removed: everything up to the first ':' ("1:9.2p1-2" → "9.2p1-2");
//  2. the Debian revision is removed: everything from the last '-'
//     ("1.22.1-9+deb12u11" → "1.22.1"); a native version has none;
//  3. repack and pre-release suffixes are removed: everything from the
//     first '+' or '~' ("2.3.19.1+dfsg1" → "2.3.19.1", "7.0~rc1" → "7.0").
//
// So "5:7.0.15-1~deb12u10" gives "7.0.15" and "1:2.3.19.1+dfsg1-2.1+deb12u7"
// gives "2.3.19.1". A version marked "+really" (an older upstream under a
// newer number) keeps the number before "+really", which is not what runs.
func Upstream(version string) string {
	v := version
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		v = v[:i]
	}
	if i := strings.IndexAny(v, "+~"); i >= 0 {
		v = v[:i]
	}
	return v
}

// versions caches dpkg-query's answers by package name: a package does
// not change while the tests run.
var versions sync.Map // string → string

// packageVersion returns the installed version of the Debian package pkg
// as dpkg-query reports it.
func packageVersion(pkg string) (string, error) {
	if v, ok := versions.Load(pkg); ok {
		return v.(string), nil
	}
	out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", pkg).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("dpkg-query -W %s: %w", pkg, err)
	}
	status, v, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if status != "installed" || v == "" {
		return "", fmt.Errorf("dpkg-query -W %s: not installed (status %q)", pkg, status)
	}
	versions.Store(pkg, v)
	return v, nil
}
