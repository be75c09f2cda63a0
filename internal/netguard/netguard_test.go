package netguard

import (
	"errors"
	"net/netip"
	"testing"
)

func TestNonPublic(t *testing.T) {
	refused := []struct{ addr, why string }{
		{"127.0.0.1", "loopback"},
		{"10.1.2.3", "private"},
		{"169.254.169.254", "link-local"},
		{"100.64.0.1", "shared (carrier-grade NAT)"},
		{"100.127.255.254", "shared (carrier-grade NAT)"},
		{"192.88.99.1", "6to4 relay anycast"},
		{"255.255.255.255", "reserved"},
		// IPv4-mapped (::ffff:0:0/96): judged by the IPv4 address.
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:169.254.169.254", "link-local"},
		{"::ffff:100.64.0.1", "shared (carrier-grade NAT)"},
		{"::ffff:0.0.0.0", "unspecified"},
		// NAT64 and 6to4 carrying a non-public IPv4 address.
		{"64:ff9b::a9fe:a9fe", "link-local"},
		{"64:ff9b::6440:1", "shared (carrier-grade NAT)"},
		{"64:ff9b::7f00:1", "loopback"},
		{"2002:a00:1::1", "private"},
		// IPv6 forms refused whatever IPv4 address they carry.
		{"::ffff:0:7f00:1", "IPv4-translated"},
		{"::ffff:0:808:808", "IPv4-translated"},
		{"::7f00:1", "IPv4-compatible"},
		{"::808:808", "IPv4-compatible"},
		{"64:ff9b:1::808:808", "local-use NAT64"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},
		{"2001:2::1", "benchmarking"},
		{"2001:20::1", "ORCHID"},
		{"3fff::1", "documentation"},
		{"5f00::1", "segment routing"},
		{"fe80::1%eth0", "link-local"},
		{"fd00::1", "private"},
		{"ff02::1", "multicast"},
	}
	for _, tt := range refused {
		a := netip.MustParseAddr(tt.addr)
		if got := NonPublic(a); got != tt.why {
			t.Errorf("NonPublic(%s) = %q, want %q", tt.addr, got, tt.why)
		}
	}
	public := []string{
		"8.8.8.8", "1.1.1.1", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
		"2606:4700:4700::1111", "2001:4860:4860::8888", "100.128.0.1", "192.88.100.1",
	}
	for _, s := range public {
		if got := NonPublic(netip.MustParseAddr(s)); got != "" {
			t.Errorf("NonPublic(%s) = %q, want public", s, got)
		}
	}
}

// TestControl: the check on each address dialled, after name
// resolution, as webhook and simplehttp use it.
func TestControl(t *testing.T) {
	for _, addr := range []string{"[::ffff:127.0.0.1]:80", "[::ffff:10.0.0.1]:443", "[64:ff9b::a9fe:a9fe]:80", "[::ffff:0:a00:1]:80", "100.64.0.1:80"} {
		if err := Control("tcp", addr, nil); !errors.Is(err, ErrNonPublic) {
			t.Errorf("Control(%s) = %v, want ErrNonPublic", addr, err)
		}
	}
	for _, addr := range []string{"[::ffff:8.8.8.8]:443", "8.8.8.8:443", "[2606:4700:4700::1111]:443"} {
		if err := Control("tcp", addr, nil); err != nil {
			t.Errorf("Control(%s) = %v, want nil", addr, err)
		}
	}
}
