#!/usr/bin/env bash
# Installs what felt's tests, demo and bench need from Debian, when run as root;
# otherwise says exactly what is missing. Never fails the build for optional tools.
set -u
need=()
command -v etcd    >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
command -v iperf3  >/dev/null 2>&1 || need+=(iperf3)
command -v ping    >/dev/null 2>&1 || need+=(iputils-ping)
command -v ethtool >/dev/null 2>&1 || need+=(ethtool)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v ip      >/dev/null 2>&1 || need+=(iproute2)
# The wireguard interop test's flanneld-style node, and its no-plaintext capture.
command -v wireguard-go >/dev/null 2>&1 || need+=(wireguard-go)
command -v wg      >/dev/null 2>&1 || need+=(wireguard-tools)
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "deps: installing ${need[*]} (Debian packages)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
		|| echo "deps: apt-get could not install ${need[*]}; tests that need them will skip and say so"
else
	echo "deps: missing ${need[*]}; install them with: sudo apt-get install ${need[*]}"
	echo "deps: tests that need them skip and say so"
fi
exit 0
