package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/lease/etcdstore"
)

// Environment prefixes for flags. flanneld reads FLANNELD_<FLAG>; felt also
// reads FELT_<FLAG>, which wins, so one unit file can override the other.
const (
	envPrefixFelt     = "FELT_"
	envPrefixFlanneld = "FLANNELD_"
)

// newFlagSet returns a FlagSet for `felt <name>` that reports errors instead
// of exiting, printing its usage to w.
func newFlagSet(name, args string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "usage: %s [flags]%s\n\nflags (also read from FELT_<FLAG> and FLANNELD_<FLAG>):\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, then fills every flag not given on the command
// line from the environment (applyEnv).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageErr("%v", err)
	}
	return applyEnv(fs)
}

// envName is a flag's environment form under prefix: upper-cased, with '-'
// and '.' turned into '_' (flanneld's rule): etcd-endpoints ->
// FLANNELD_ETCD_ENDPOINTS.
func envName(prefix, flagName string) string {
	return prefix + strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToUpper(flagName))
}

// applyEnv sets each flag of fs that was not given on the command line from
// FELT_<NAME>, else FLANNELD_<NAME>; empty values are ignored. Call it after
// fs.Parse. A value the flag rejects is an error naming the variable.
func applyEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		for _, prefix := range []string{envPrefixFelt, envPrefixFlanneld} {
			name := envName(prefix, f.Name)
			v := os.Getenv(name)
			if v == "" {
				continue
			}
			if serr := fs.Set(f.Name, v); serr != nil {
				err = usageErr("environment %s=%q: %v", name, v, serr)
			}
			return
		}
	})
	return err
}

// etcdFlags are flanneld's --etcd-* flags plus felt's timeouts.
type etcdFlags struct {
	endpoints, prefix         string
	caFile, certFile, keyFile string
	username, password        string
	dialTimeout, reqTimeout   time.Duration
}

func addEtcdFlags(fs *flag.FlagSet) *etcdFlags {
	f := &etcdFlags{}
	fs.StringVar(&f.endpoints, "etcd-endpoints", strings.Join(etcdstore.DefaultEndpoints, ","), "comma-separated etcd endpoints")
	fs.StringVar(&f.prefix, "etcd-prefix", lease.DefaultPrefix, "etcd prefix of the network config and leases")
	fs.StringVar(&f.caFile, "etcd-cafile", "", "CA to verify etcd's certificate (used with certfile and keyfile)")
	fs.StringVar(&f.certFile, "etcd-certfile", "", "client certificate for etcd; TLS needs it and the keyfile")
	fs.StringVar(&f.keyFile, "etcd-keyfile", "", "client key for etcd")
	fs.StringVar(&f.username, "etcd-username", "", "etcd user name")
	fs.StringVar(&f.password, "etcd-password", "", "etcd password")
	fs.DurationVar(&f.dialTimeout, "etcd-dial-timeout", 5*time.Second, "how long to wait for an etcd connection")
	fs.DurationVar(&f.reqTimeout, "etcd-request-timeout", 10*time.Second, "how long one etcd request may take")
	return f
}

// options returns the typed client options; dial and request timeouts
// must be positive.
func (f *etcdFlags) options() (etcdstore.ClientOptions, error) {
	if f.dialTimeout <= 0 {
		return etcdstore.ClientOptions{}, usageErr("--etcd-dial-timeout %s: must be positive", f.dialTimeout)
	}
	if f.reqTimeout <= 0 {
		return etcdstore.ClientOptions{}, usageErr("--etcd-request-timeout %s: must be positive", f.reqTimeout)
	}
	return etcdstore.ClientOptions{
		Endpoints:      []string{f.endpoints},
		Prefix:         f.prefix,
		CAFile:         f.caFile,
		CertFile:       f.certFile,
		KeyFile:        f.keyFile,
		Username:       f.username,
		Password:       f.password,
		DialTimeout:    f.dialTimeout,
		RequestTimeout: f.reqTimeout,
	}, nil
}
