package apply

import (
	"errors"
	"io/fs"
	"testing"
)

// countingFS answers every read from its files and counts the calls that
// reach it.
type countingFS struct {
	files map[string]string
	calls int
}

func (c *countingFS) ReadFile(name string) ([]byte, error) {
	c.calls++
	if v, ok := c.files[name]; ok {
		return []byte(v), nil
	}
	return nil, fs.ErrNotExist
}

func (c *countingFS) WriteFile(name string, data []byte) error {
	c.calls++
	c.files[name] = string(data)
	return nil
}

func (c *countingFS) ReadDir(name string) ([]string, error) {
	c.calls++
	return []string{"eth0"}, nil
}

func (c *countingFS) Exists(name string) bool {
	c.calls++
	_, ok := c.files[name]
	return ok
}

func (c *countingFS) ReadLink(name string) (string, error) {
	c.calls++
	return "../" + name, nil
}

func TestCachedFS(t *testing.T) {
	const online = "/sys/bus/ccw/devices/0.0.0001/online"
	type op func(f cachedFS, c *readCache) string
	read := func(f cachedFS, _ *readCache) string {
		b, err := f.ReadFile(online)
		if errors.Is(err, fs.ErrNotExist) {
			return "absent"
		}
		return string(b)
	}
	write := func(v string) op {
		return func(f cachedFS, _ *readCache) string { _ = f.WriteFile(online, []byte(v)); return "" }
	}
	forget := func(_ cachedFS, c *readCache) string { c.forget(); return "" }
	for _, tc := range []struct {
		name  string
		ops   []op
		want  []string // each op's answer ("" for writes and forgets)
		calls int      // calls that reached the file system
	}{
		{"a read again is answered from the cache", []op{read, read, read}, []string{"0", "0", "0"}, 1},
		{"a write empties the cache: the read after it is fresh", []op{read, write("1"), read, read}, []string{"0", "", "1", "1"}, 3},
		{"forget (a wait) empties the cache", []op{read, forget, read}, []string{"0", "", "0"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			under := &countingFS{files: map[string]string{online: "0"}}
			c := &readCache{}
			f := cachedFS{c, under}
			for i, o := range tc.ops {
				if got := o(f, c); got != tc.want[i] {
					t.Errorf("op %d answered %q, want %q", i, got, tc.want[i])
				}
			}
			if under.calls != tc.calls {
				t.Errorf("%d calls reached the file system, want %d", under.calls, tc.calls)
			}
		})
	}
}

// TestCachedFSKinds: every kind of read is kept, absence and errors too,
// and a caller changing what it got does not change the cache.
func TestCachedFSKinds(t *testing.T) {
	under := &countingFS{files: map[string]string{"/a": "x"}}
	f := cachedFS{&readCache{}, under}
	for range 2 {
		b, _ := f.ReadFile("/a")
		b[0] = 'y'
		if _, err := f.ReadFile("/missing"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile of a missing file: %v", err)
		}
		names, _ := f.ReadDir("/net")
		names[0] = "changed"
		if !f.Exists("/a") || f.Exists("/missing") {
			t.Error("Exists")
		}
		if l, _ := f.ReadLink("/link"); l != "..//link" {
			t.Errorf("ReadLink = %q", l)
		}
	}
	if b, _ := f.ReadFile("/a"); string(b) != "x" {
		t.Errorf("ReadFile from the cache = %q after the caller changed its copy", b)
	}
	if names, _ := f.ReadDir("/net"); names[0] != "eth0" {
		t.Errorf("ReadDir from the cache = %q after the caller changed its copy", names)
	}
	if under.calls != 6 {
		t.Errorf("%d calls reached the file system, want 6 (one per distinct read)", under.calls)
	}
}
