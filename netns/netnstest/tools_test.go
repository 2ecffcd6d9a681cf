package netnstest

import "testing"

func TestNeedTools(t *testing.T) {
	for _, c := range []struct {
		tools []string
		skip  bool
	}{
		{[]string{"sh"}, false},
		{[]string{"sh", "felt-no-such-tool"}, true},
	} {
		var ran bool
		sub := t.Run("", func(t *testing.T) {
			NeedTools(t, c.tools...)
			ran = true
		})
		if !sub || ran == c.skip {
			t.Errorf("NeedTools(%q): test body ran %v, want %v", c.tools, ran, !c.skip)
		}
	}
}
