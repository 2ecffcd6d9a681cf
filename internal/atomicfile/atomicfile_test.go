package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestWrite creates the missing directory under the umask, gives the file
// the asked mode whatever the umask, replaces an existing file, and leaves no temporary
// file behind.
func TestWrite(t *testing.T) {
	old := syscall.Umask(0o077) // would turn 0644 into 0600 if it applied
	t.Cleanup(func() { syscall.Umask(old) })
	dir := filepath.Join(t.TempDir(), "run", "flannel")
	path := filepath.Join(dir, "file")
	for _, c := range []struct {
		data string
		perm fs.FileMode
	}{
		{"first", 0o644},
		{"second, longer", 0o400},
	} {
		if err := Write(path, []byte(c.data), c.perm); err != nil {
			t.Fatalf("Write(%q, %v): %v", c.data, c.perm, err)
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != c.data {
			t.Errorf("file holds %q (%v), want %q", got, err, c.data)
		}
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != c.perm {
			t.Errorf("file mode %v (%v), want %v", st.Mode(), err, c.perm)
		}
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v (%v), want 0755 less the umask 077", st.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("dir holds %v, want only the file", entries)
	}
}

// TestWriteFails: when the rename cannot happen (path is a non-empty
// directory) the error names path, the target is untouched and the
// temporary file is gone.
func TestWriteFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "taken")
	if err := os.MkdirAll(filepath.Join(path, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := Write(path, []byte("x"), 0o644)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Write over a directory: %v, want an error naming %s", err, path)
	}
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		t.Errorf("target after a failed write: %v, %v; want the directory as it was", st, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("dir holds %v, want only the target: the temporary file was left", entries)
	}
	// A directory that cannot be made: the error names path too.
	blocker := filepath.Join(dir, "plain")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	under := filepath.Join(blocker, "sub", "file")
	if err := Write(under, []byte("x"), 0o644); err == nil || !strings.Contains(err.Error(), under) {
		t.Errorf("Write under a plain file: %v, want an error naming %s", err, under)
	}
}
