package cmdline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Inside the initramfs, /etc/cmdline.d/*.conf adds dpm-netconf's own
// parameters (dracut's getarg reads them too); the kernel's command line
// wins; outside the initramfs the files do not count.
func TestReadBootCmdlineD(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/cmdline.d/50-dpm.conf", "rd.dpm_netconf.timeout=7 rd.dpm_netconf=0\n")
	write("etc/cmdline.d/60-bad.conf", "rd.dpm_netconf.timeout=soon\n")
	if b := ReadBoot(root, "0001,0;"); b.Off || b.Timeout != DefaultTimeout {
		t.Errorf("outside the initramfs: %+v", b)
	}
	write("etc/initrd-release", "")
	b := ReadBoot(root, "0001,0;")
	if b.Timeout != 7*time.Second || !strings.HasSuffix(b.TimeoutFrom, "in "+filepath.Join(root, "etc/cmdline.d/50-dpm.conf")) ||
		!b.Off || !strings.Contains(b.OffBy, "50-dpm.conf") {
		t.Errorf("from cmdline.d: %+v", b)
	}
	if len(b.Problems) != 1 || !strings.Contains(b.Problems[0].Error(), "60-bad.conf") {
		t.Errorf("problems %v", b.Problems)
	}
	if b := ReadBoot(root, "rd.dpm_netconf.timeout=3 0001,0;"); b.Timeout != 3*time.Second {
		t.Errorf("the kernel's own parameter must win: %+v", b)
	}
}

func TestRead(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "proc/cmdline"), []byte("quiet 0001,0;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Read(root, "", nil); err != nil || s != "quiet 0001,0;\n" {
		t.Errorf("Read(proc) = %q, %v", s, err)
	}
	if s, err := Read(root, "-", strings.NewReader("0004,0;")); err != nil || s != "0004,0;" {
		t.Errorf("Read(-) = %q, %v", s, err)
	}
	if _, err := Read(root, filepath.Join(root, "nope"), nil); err == nil || !strings.Contains(err.Error(), "read command line") {
		t.Errorf("Read(missing) = %v", err)
	}
}
