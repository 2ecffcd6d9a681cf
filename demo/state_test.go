package demo

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := State{Name: "fdx", PID: 42, Targets: map[string]string{"h0": "fdxh0", "h0/c1": "fdxh0-c1", "h1/c2": "fdxh1-c2"}}
	if err := writeState(dir, s); err != nil {
		t.Fatal(err)
	}
	got, err := ReadState(dir, "fdx")
	if err != nil {
		t.Fatal(err)
	}
	for target, want := range map[string]string{"h0/c1": "fdxh0-c1", "h0": "fdxh0", "fdxh1-c2": "fdxh1-c2"} {
		if ns, err := got.Namespace(target); err != nil || ns != want {
			t.Errorf("Namespace(%q) = %q, %v; want %q", target, ns, err, want)
		}
	}
	if _, err := got.Namespace("h9/c1"); err == nil || !strings.Contains(err.Error(), `no host or container "h9/c1"; it has: h0 h0/c1 h1/c2`) {
		t.Errorf("unknown target: %v; want the list of targets", err)
	}
	if _, err := ReadState(dir, "other"); err == nil || !strings.Contains(err.Error(), `no demo "other" is running`) {
		t.Errorf("missing state: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o644)
	if _, err := ReadState(dir, "bad"); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("corrupt state: %v; want an error naming the file", err)
	}
}

func TestProgress(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	var b bytes.Buffer
	p := newProgress(&b, clock)
	p.step("build", func() (string, error) { now = now.Add(1500 * time.Millisecond); return "built 3 hosts", nil })
	err := p.step("ping", func() (string, error) { now = now.Add(250 * time.Millisecond); return "", os.ErrDeadlineExceeded })
	if err == nil || !strings.HasPrefix(err.Error(), "ping: ") {
		t.Errorf("failed step returned %v; want it wrapped with the step's name", err)
	}
	want := "[  1.50s] ok   built 3 hosts (1.5s)\n[  1.75s] FAIL ping (250ms): i/o timeout\n"
	if b.String() != want {
		t.Errorf("progress:\n%s\nwant:\n%s", b.String(), want)
	}
}
