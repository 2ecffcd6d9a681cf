#!/bin/sh
# A stand-in for flanneld, for testing `felt bench --flanneld PATH` where no
# flanneld binary is at hand: it runs felt under flanneld's command line.
# felt agent takes flanneld's flag names, so the mapping is small: add felt's
# `agent` subcommand, and drop flanneld's glog verbosity (-v=N), which felt,
# logging with zap, lacks. felt implements flanneld's udp, vxlan, host-gw and
# wireguard backends, so every flanneld scenario runs through it. Figures
# measured through this script are felt's, not flanneld's.
#
# The felt binary is $STANDIN_FELT, else felt on PATH.
felt=${STANDIN_FELT:-felt}
unset STANDIN_FELT
n=$#
i=0
while [ "$i" -lt "$n" ]; do
	a=$1
	shift
	i=$((i + 1))
	case $a in
	-v=* | --v=*) echo "flanneld-standin: dropping $a (felt has no glog verbosity)" >&2 ;;
	*) set -- "$@" "$a" ;;
	esac
done
exec "$felt" agent "$@"
