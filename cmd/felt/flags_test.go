package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/lease/etcdstore"
)

func TestEnvName(t *testing.T) {
	for flagName, want := range map[string]string{
		"etcd-endpoints":            "FLANNELD_ETCD_ENDPOINTS",
		"subnet-lease-renew-margin": "FLANNELD_SUBNET_LEASE_RENEW_MARGIN",
		"a.b":                       "FLANNELD_A_B",
	} {
		if got := envName(envPrefixFlanneld, flagName); got != want {
			t.Errorf("envName(%q) = %q, want %q", flagName, got, want)
		}
	}
}

// TestFlagEnvPrecedence: command line > FELT_ > FLANNELD_ > default; empty
// environment values are ignored.
func TestFlagEnvPrecedence(t *testing.T) {
	const def = "http://127.0.0.1:4001,http://127.0.0.1:2379"
	tests := []struct {
		name      string
		args      []string
		felt, fld string // FELT_ETCD_ENDPOINTS, FLANNELD_ETCD_ENDPOINTS ("" = empty)
		want      string
	}{
		{"default", nil, "", "", def},
		{"FLANNELD_ only", nil, "", "http://f:1", "http://f:1"},
		{"FELT_ only", nil, "http://felt:1", "", "http://felt:1"},
		{"FELT_ beats FLANNELD_", nil, "http://felt:1", "http://f:1", "http://felt:1"},
		{"command line beats both", []string{"--etcd-endpoints=http://cli:1"}, "http://felt:1", "http://f:1", "http://cli:1"},
		{"command line equal to the default still wins", []string{"-etcd-endpoints", def}, "http://felt:1", "", def},
		{"empty FELT_ falls through to FLANNELD_", nil, "", "http://f:1", "http://f:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("FELT_ETCD_ENDPOINTS", tt.felt)
			t.Setenv("FLANNELD_ETCD_ENDPOINTS", tt.fld)
			fs := newFlagSet("test", "", &strings.Builder{})
			ef := addEtcdFlags(fs)
			if err := parseFlags(fs, tt.args); err != nil {
				t.Fatal(err)
			}
			if ef.endpoints != tt.want {
				t.Errorf("endpoints = %q, want %q", ef.endpoints, tt.want)
			}
		})
	}
}

func TestFlagEnvTypesAndErrors(t *testing.T) {
	t.Setenv("FLANNELD_ETCD_PREFIX", "/flannel/net")
	t.Setenv("FELT_ETCD_DIAL_TIMEOUT", "250ms")
	t.Setenv("FLANNELD_ETCD_USERNAME", "root")
	fs := newFlagSet("test", "", &strings.Builder{})
	ef := addEtcdFlags(fs)
	if err := parseFlags(fs, []string{"--etcd-password", "pw"}); err != nil {
		t.Fatal(err)
	}
	o, err := ef.options()
	if err != nil {
		t.Fatal(err)
	}
	want := etcdstore.ClientOptions{Endpoints: []string{"http://127.0.0.1:4001,http://127.0.0.1:2379"}, Prefix: "/flannel/net",
		Username: "root", Password: "pw", DialTimeout: 250 * time.Millisecond, RequestTimeout: 10 * time.Second}
	if o.Prefix != want.Prefix || o.Username != want.Username || o.Password != want.Password ||
		o.DialTimeout != want.DialTimeout || o.RequestTimeout != want.RequestTimeout || o.Endpoints[0] != want.Endpoints[0] {
		t.Errorf("options = %+v\nwant %+v", o, want)
	}

	t.Setenv("FELT_ETCD_REQUEST_TIMEOUT", "soon")
	fs = newFlagSet("test", "", &strings.Builder{})
	addEtcdFlags(fs)
	err = parseFlags(fs, nil)
	if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), `FELT_ETCD_REQUEST_TIMEOUT="soon"`) {
		t.Errorf("bad environment value: %v, want a usage error naming the variable", err)
	}

	fs = newFlagSet("test", "", &strings.Builder{})
	ef = addEtcdFlags(fs)
	t.Setenv("FELT_ETCD_REQUEST_TIMEOUT", "")
	if err := parseFlags(fs, []string{"--etcd-dial-timeout=0s"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ef.options(); err == nil || !strings.Contains(err.Error(), "--etcd-dial-timeout 0s: must be positive") {
		t.Errorf("zero dial timeout: %v", err)
	}
}
