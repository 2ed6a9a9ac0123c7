// Package errno turns system-call errors into the words an operator reads.
package errno

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Words gives an error's errno as "EINVAL (invalid argument)", or the
// error's own text when it carries no errno.
func Words(err error) string {
	var e unix.Errno
	if errors.As(err, &e) {
		name := unix.ErrnoName(e)
		if e == unix.EOPNOTSUPP {
			name = "EOPNOTSUPP" // same number as ENOTSUP; the kernel's name for it
		}
		return fmt.Sprintf("%s (%s)", name, e.Error())
	}
	return err.Error()
}

// Err keeps err's errno for errors.Is and says it in words: its text is
// Words(err).
func Err(err error) error {
	var e unix.Errno
	if !errors.As(err, &e) {
		return err
	}
	return wordsError{err}
}

type wordsError struct{ err error }

func (w wordsError) Error() string { return Words(w.err) }
func (w wordsError) Unwrap() error { return w.err }
