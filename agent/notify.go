package agent

import (
	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// notifier tells systemd (a Type=notify unit) how start-up goes, through
// $NOTIFY_SOCKET: STATUS= lines while waiting, READY=1 once the node is
// ready (flanneld sends READY=1 at the same point), STOPPING=1 on the way
// out. Without $NOTIFY_SOCKET it does nothing.
type notifier struct{ log *zap.Logger }

func (n notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify failed", zap.String("state", state), zap.Error(err))
	}
}

func (n notifier) status(s string) { n.send("STATUS=" + s) }

func (n notifier) ready(s string) { n.send("READY=1\nSTATUS=" + s) }

func (n notifier) stopping() { n.send("STOPPING=1") }
