//go:build tools

// The commands govmtest builds into its guest image; the blank imports keep
// their dependencies in go.mod.
package vmtests

import (
	_ "github.com/hugelgupf/vmtest/vminit/gouinit"
	_ "github.com/hugelgupf/vmtest/vminit/shutdownafter"
	_ "github.com/hugelgupf/vmtest/vminit/vmmount"
)
