package logging

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

func journalID(t *testing.T, fi os.FileInfo) string {
	t.Helper()
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
