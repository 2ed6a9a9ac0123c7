package errno

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWords(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{unix.EINVAL, "EINVAL (invalid argument)"},
		{&fs.PathError{Op: "write", Path: "/sys/x", Err: unix.EPERM}, "EPERM (operation not permitted)"},
		{fmt.Errorf("wrapped: %w", unix.EADDRNOTAVAIL), "EADDRNOTAVAIL (cannot assign requested address)"},
		{unix.EOPNOTSUPP, "EOPNOTSUPP (operation not supported)"},
		{errors.New("plain"), "plain"},
	} {
		if got := Words(tc.err); got != tc.want {
			t.Errorf("Words(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
