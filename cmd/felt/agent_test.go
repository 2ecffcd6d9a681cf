package main

import (
	"slices"
	"testing"
)

func TestUnknownEnv(t *testing.T) {
	fs := newFlagSet("felt agent", "", nil)
	addEtcdFlags(fs)
	fs.Bool("ip-masq", false, "")
	got := unknownEnv(fs, []string{"FLANNELD_ETCD_ENDPOINTS=x", "FELT_IP_MASQ=1", "FLANNELD_IFACE_REGEX=eth.*",
		"FELT_NO_SUCH=1", "PATH=/bin", "FLANNEL_SUBNET=10.5.1.1/24", "FELT_TUN_MODERATE=0", "FELT_LINGER=50"})
	if want := []string{"FLANNELD_IFACE_REGEX", "FELT_NO_SUCH"}; !slices.Equal(got, want) {
		t.Fatalf("unknownEnv = %v, want %v", got, want)
	}
}
