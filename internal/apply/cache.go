package apply

import (
	"sync"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
)

// readCache keeps a worker's sysfs reads from one of its writes or waits to
// the next: a read that another read of the same file has just answered,
// with nothing written and no time waited since, is answered again without
// a system call. The steps read overlapping sets of files one after the
// other (the plan and the first step the device's kind and online state,
// the layer2 step's check after its write and the portno step's first look
// the same four group attributes, the interface and MAC steps the same
// interface): on an emulated CPU each read costs up to a millisecond.
//
// Nothing here weakens observe → act → verify: the cache is emptied before
// every write (the engine's act, and any write through cachedFS) and after
// every wait, so each write is still followed by reading the state again,
// and each wait by a fresh look.
type readCache struct {
	mu      sync.Mutex
	entries map[cacheKey]cacheEntry
}

type cacheKey struct {
	op   byte // 'r' ReadFile, 'd' ReadDir, 'e' Exists, 'l' ReadLink
	name string
}

type cacheEntry struct {
	data  []byte
	names []string
	text  string
	ok    bool
	err   error
}

func (c *readCache) get(k cacheKey) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	return e, ok
}

func (c *readCache) put(k cacheKey, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[cacheKey]cacheEntry{}
	}
	c.entries[k] = e
}

// forget empties the cache: something was written, or time passed.
func (c *readCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
}

// cachedFS answers reads from c when it can, and forgets everything on a
// write.
type cachedFS struct {
	c  *readCache
	fs sysfs.FS
}

func (f cachedFS) ReadFile(name string) ([]byte, error) {
	k := cacheKey{'r', name}
	if e, ok := f.c.get(k); ok {
		return append([]byte(nil), e.data...), e.err
	}
	b, err := f.fs.ReadFile(name)
	f.c.put(k, cacheEntry{data: append([]byte(nil), b...), err: err})
	return b, err
}

func (f cachedFS) WriteFile(name string, data []byte) error {
	f.c.forget()
	return f.fs.WriteFile(name, data)
}

func (f cachedFS) ReadDir(name string) ([]string, error) {
	k := cacheKey{'d', name}
	if e, ok := f.c.get(k); ok {
		return append([]string(nil), e.names...), e.err
	}
	names, err := f.fs.ReadDir(name)
	f.c.put(k, cacheEntry{names: append([]string(nil), names...), err: err})
	return names, err
}

func (f cachedFS) Exists(name string) bool {
	k := cacheKey{'e', name}
	if e, ok := f.c.get(k); ok {
		return e.ok
	}
	ok := f.fs.Exists(name)
	f.c.put(k, cacheEntry{ok: ok})
	return ok
}

func (f cachedFS) ReadLink(name string) (string, error) {
	k := cacheKey{'l', name}
	if e, ok := f.c.get(k); ok {
		return e.text, e.err
	}
	s, err := f.fs.ReadLink(name)
	f.c.put(k, cacheEntry{text: s, err: err})
	return s, err
}
