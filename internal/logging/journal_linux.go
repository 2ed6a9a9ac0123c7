package logging

import (
	"fmt"
	"os"
	"syscall"
)

// journalStreamMatches compares JOURNAL_STREAM ("<dev>:<inode>") with the
// file: a child that inherited the variable but not the stream (a shell
// redirect) must still log to the kernel log.
func journalStreamMatches(v string, fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return v == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
