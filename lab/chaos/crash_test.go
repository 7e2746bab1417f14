package chaos

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestStoreSnapshotRestore: after a restore the store is what it was at the
// snapshot, as a disk that lost everything not synced since: blocks cut back,
// other files as they were, files and folders created since gone, a file removed
// since back.
func TestStoreSnapshotRestore(t *testing.T) {
	dir := t.TempDir()
	write := func(rel string, data []byte) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("streams/S/msgs/1.blk", bytes.Repeat([]byte("a"), 100))
	write("streams/S/msgs/index.db", []byte("state at the snapshot"))
	write("streams/S/obs/agg/o.dat", []byte("consumer at the snapshot"))
	snap, err := snapshotStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	// What happened after the last sync.
	f, err := os.OpenFile(filepath.Join(dir, "streams/S/msgs/1.blk"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Repeat([]byte("b"), 50))
	f.Close()
	write("streams/S/msgs/2.blk", bytes.Repeat([]byte("c"), 30))
	write("streams/S/msgs/index.db", []byte("a later state"))
	write("streams/S/obs/other/o.dat", []byte("a consumer created later"))
	if err := os.RemoveAll(filepath.Join(dir, "streams/S/obs/agg")); err != nil {
		t.Fatal(err)
	}

	dropped, err := snap.restore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if dropped != 80 {
		t.Errorf("%d message bytes dropped, want 80", dropped)
	}
	want := map[string]string{
		"streams/S/msgs/1.blk":    string(bytes.Repeat([]byte("a"), 100)),
		"streams/S/msgs/index.db": "state at the snapshot",
		"streams/S/obs/agg/o.dat": "consumer at the snapshot",
	}
	got := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			got[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	if len(got) != len(want) {
		t.Errorf("files after the restore: %v", got)
	}
	for rel, data := range want {
		if got[rel] != data {
			t.Errorf("%s = %q, want %q", rel, got[rel], data)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "streams/S/obs/other")); !os.IsNotExist(err) {
		t.Errorf("the folder created after the snapshot is still there (%v)", err)
	}
}
