package cmdline

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Read reads the command line: from file ("-" for stdin), or, when file
// is "", the kernel's (root/proc/cmdline).
func Read(root, file string, stdin io.Reader) (string, error) {
	var b []byte
	var err error
	switch file {
	case "":
		p := filepath.Join(root, "proc/cmdline")
		if b, err = os.ReadFile(p); err != nil {
			return "", fmt.Errorf("read kernel command line: %w", err)
		}
	case "-":
		if b, err = io.ReadAll(stdin); err != nil {
			return "", fmt.Errorf("read command line from stdin: %w", err)
		}
	default:
		if b, err = os.ReadFile(file); err != nil {
			return "", fmt.Errorf("read command line: %w", err)
		}
	}
	return string(b), nil
}

// InInitramfs: dracut and systemd mark the initramfs with
// /etc/initrd-release; there the rd. parameters count.
func InInitramfs(root string) bool {
	_, err := os.Stat(filepath.Join(root, "etc/initrd-release"))
	return err == nil
}

// ReadBoot reads dpm-netconf's own parameters from the command line text
// and, inside the initramfs below root, from /etc/cmdline.d/*.conf (set
// when the image was built), which dracut's getarg reads before the
// kernel's command line: the kernel's own parameters win.
func ReadBoot(root, text string) Boot {
	initrd := InInitramfs(root)
	boot := BootOptions(text, initrd)
	if !initrd {
		return boot
	}
	files, _ := filepath.Glob(filepath.Join(root, "etc/cmdline.d/*.conf"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		d := BootOptions(string(data), true)
		for _, p := range d.Problems {
			boot.Problems = append(boot.Problems, fmt.Errorf("%s: %w", f, p))
		}
		if boot.TimeoutFrom == "default" && d.TimeoutFrom != "default" {
			boot.Timeout, boot.TimeoutFrom = d.Timeout, d.TimeoutFrom+" in "+f
		}
		if !boot.Off && d.Off {
			boot.Off, boot.OffBy = true, d.OffBy+" in "+f
		}
	}
	return boot
}
