package netns

import "testing"

func TestParseLink(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want uint64
		ok   bool
	}{
		{"host", "net:[4026531840]", 4026531840, true},
		{"other type", "mnt:[4026531840]", 0, false},
		{"no bracket", "net:4026531840", 0, false},
		{"empty", "net:[]", 0, false},
		{"zero", "net:[0]", 0, false},
		{"sign", "net:[+1]", 0, false},
		{"too big", "net:[99999999999999999999]", 0, false},
		{"trailing", "net:[12]x", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseLink([]byte(tt.in))
			if got != tt.want || ok != tt.ok {
				t.Errorf("ParseLink(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseLink(f *testing.F) {
	f.Add([]byte("net:[4026531840]"))
	f.Add([]byte("net:[]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ino, ok := ParseLink(b)
		if ok != (ino != 0) {
			t.Fatalf("ParseLink(%q) = %d, %v", b, ino, ok)
		}
	})
}

func TestNamespaceLabel(t *testing.T) {
	for _, tt := range []struct {
		n    Namespace
		want string
	}{
		{Namespace{Inode: 1, Host: true, Name: "x"}, "host"},
		{Namespace{Inode: 2, Name: "blue"}, "blue"},
		{Namespace{Inode: 3}, "net:[3]"},
	} {
		if got := tt.n.Label(); got != tt.want {
			t.Errorf("%+v.Label() = %q; want %q", tt.n, got, tt.want)
		}
	}
}
