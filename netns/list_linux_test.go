package netns

import (
	"os"
	"os/exec"
	"slices"
	"testing"
)

// TestListFindsOwnAndNamed checks List against this process's own
// namespace, and, as root, a named namespace that 'ip netns add' made and
// a process inside it.
func TestListFindsOwnAndNamed(t *testing.T) {
	var own uint64
	if b, err := os.Readlink("/proc/self/ns/net"); err == nil {
		own, _ = ParseLink([]byte(b))
	}
	if own == 0 {
		t.Skip("no /proc/self/ns/net")
	}
	nss, _, err := List()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(nss, func(n Namespace) bool { return n.Inode == own })
	if i < 0 || !slices.Contains(nss[i].PIDs, os.Getpid()) {
		t.Fatalf("List() has no namespace %d holding this process (pid %d): %+v", own, os.Getpid(), nss)
	}
	if os.Geteuid() != 0 {
		return
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2)")
	}
	name := "portctl-nslist-" + string(rune('a'+os.Getpid()%26))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	sleeper := exec.Command("ip", "netns", "exec", name, "sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	// ip netns exec enters the namespace before exec'ing sleep: wait for it.
	var found Namespace
	for range 100 {
		nss, _, err = List()
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(nss, func(n Namespace) bool { return n.Name == name })
		if i >= 0 && slices.Contains(nss[i].PIDs, sleeper.Process.Pid) {
			found = nss[i]
			break
		}
		exec.Command("sleep", "0.05").Run()
	}
	if found.Name == "" {
		t.Fatalf("List() has no namespace %q holding pid %d: %+v", name, sleeper.Process.Pid, nss)
	}
	if found.Path != "/run/netns/"+name || found.Host || found.Label() != name {
		t.Errorf("namespace %q = %+v; want path /run/netns/%s, not host", name, found, name)
	}
	if !nss[0].Host {
		t.Errorf("List()[0] = %+v; want the host's namespace first", nss[0])
	}
}
