package netns

import (
	"fmt"
	"strings"
	"testing"
)

func TestBridgeLabEveryPairPings(t *testing.T) {
	needRoot(t)
	name, u := labName("b"), underlay("b")
	l := newLab(t, LabConfig{Name: name, Hosts: 3, Underlay: u})
	if len(l.Hosts) != 3 {
		t.Fatalf("%d hosts, want 3", len(l.Hosts))
	}
	for i, h := range l.Hosts {
		want, _ := nthAddr(u, uint64(i)+2)
		if h.Addr != want || h.Iface != "eth0" || h.Name != fmt.Sprintf("%sh%d", name, i) {
			t.Errorf("host %d = %+v; want %sh%d at %s on eth0", i, h, name, i, want)
		}
	}
	if got := cmdOut(t, "ip", "-o", "addr", "show", "dev", l.Bridge()); !strings.Contains(got, "inet "+l.Gateway().String()+"/24") {
		t.Errorf("bridge %s lacks %s/24: %s", l.Bridge(), l.Gateway(), got)
	}
	for _, a := range l.Hosts {
		for _, b := range l.Hosts {
			if a != b {
				ping(t, a, b.Addr)
			}
		}
		ping(t, a, l.Gateway()) // e.g. an etcd in the test process
	}
}

func TestAddHostLater(t *testing.T) {
	needRoot(t)
	l := newLab(t, LabConfig{Name: labName("a"), Hosts: 1, Underlay: underlay("a")})
	h, err := l.AddHost(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Hosts) != 2 || l.Hosts[1] != h {
		t.Fatalf("Hosts = %v, want the new host second", l.Hosts)
	}
	ping(t, l.Hosts[0], h.Addr)
	ping(t, h, l.Hosts[0].Addr)
}

func TestPairLab(t *testing.T) {
	needRoot(t)
	name := labName("p")
	l := newLab(t, LabConfig{Name: name, Hosts: 2, Underlay: underlay("p"), Topology: Pair, MTU: 9000})
	ping(t, l.Hosts[0], l.Hosts[1].Addr)
	ping(t, l.Hosts[1], l.Hosts[0].Addr)
	for _, x := range leftovers(t, name) {
		if strings.HasPrefix(x, "link") {
			t.Errorf("a Pair lab made %s in the current namespace; it has no bridge", x)
		}
	}
	out, err := l.Hosts[0].Command(testCtx(t), "ip", "-d", "link", "show", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "mtu 9000") || !strings.Contains(string(out), "veth") {
		t.Errorf("eth0 in %s is not a veth with mtu 9000: %v\n%s", l.Hosts[0].Name, err, out)
	}
	if _, err := l.AddHost(testCtx(t)); err == nil {
		t.Errorf("AddHost on a Pair lab succeeded")
	}
}

func TestWireLike(t *testing.T) {
	needRoot(t)
	for _, wire := range []bool{false, true} {
		letter := map[bool]string{false: "n", true: "w"}[wire]
		l := newLab(t, LabConfig{Name: labName(letter), Hosts: 1, Underlay: underlay(letter), WireLike: wire})
		inside, err := l.Hosts[0].Command(testCtx(t), "ethtool", "-k", "eth0").CombinedOutput()
		if err != nil {
			t.Fatalf("ethtool -k in host: %v\n%s", err, inside)
		}
		outside := cmdOut(t, "ethtool", "-k", l.cfg.Name+"v0")
		for where, k := range map[string]string{"host eth0": string(inside), "bridge port": outside} {
			for feature, on := range map[string]bool{
				"tcp-segmentation-offload": !wire, "generic-segmentation-offload": !wire,
				"tx-udp-segmentation": !wire, "generic-receive-offload": wire,
			} {
				want := feature + ": " + map[bool]string{true: "on", false: "off"}[on]
				if !strings.Contains(k, want) {
					t.Errorf("WireLike=%t, %s: want %q in ethtool -k:\n%s", wire, where, want, k)
				}
			}
		}
	}
}

func TestRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		c    LabConfig
		want []string
	}{
		{LabConfig{Name: "Bad_Name", Hosts: 1, Underlay: underlay("x")}, []string{"LabConfig.Name", "Bad_Name"}},
		{LabConfig{Name: "waytoolongname", Hosts: 1, Underlay: underlay("x")}, []string{"LabConfig.Name", "12"}},
		{LabConfig{Name: "ok", Hosts: 3, Underlay: underlay("x"), Topology: Pair}, []string{"LabConfig.Hosts", "3", "exactly 2"}},
		{LabConfig{Name: "ok", Hosts: 7, Underlay: mustPrefix("10.9.9.0/29")}, []string{"LabConfig.Hosts", "7", "no room"}},
		{LabConfig{Name: "ok", Hosts: 1, Underlay: mustPrefix("10.9.9.1/24")}, []string{"LabConfig.Underlay", "10.9.9.1/24"}},
		{LabConfig{Name: "ok", Hosts: 1, Underlay: mustPrefix("fd00::/64")}, []string{"LabConfig.Underlay", "IPv4"}},
		{LabConfig{Name: "ok", Hosts: 1, Underlay: underlay("x"), MTU: 100}, []string{"LabConfig.MTU", "100"}},
	} {
		_, err := NewLab(testCtx(t), tc.c)
		if err == nil {
			t.Errorf("NewLab(%+v) succeeded", tc.c)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("NewLab(%+v): %q does not mention %q", tc.c, err, w)
			}
		}
	}
}
