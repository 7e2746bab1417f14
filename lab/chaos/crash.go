package chaos

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// The crash fault plays an OS crash of the machine running NATS, Redis, the bridge
// and the aggregate: the four processes die at once, and each broker's files lose
// what the OS had not written to disk. JetStream acknowledges a write before it is
// on disk (nats-server syncs every 2 minutes by default), so its store goes back
// to a copy of its state taken Config.CrashLoss before the crash; Redis with
// appendfsync everysec loses its last second of AOF. The aggregate may then find
// its watermark above what the stream holds: it must stop counting and say so, and
// the run repairs it the way the aggregate's log says (see runner.repair).

// maxStoreFile bounds the size of a store file the snapshot copies (every file but
// the message blocks, which it only measures).
const maxStoreFile = 64 << 20

// storeFile is one file of a snapshot: its size, and its bytes unless it is a
// message block (append-only: going back is cutting it to size).
type storeFile struct {
	size int64
	data []byte
}

// storeSnapshot is what nats-server's store held on disk at one moment.
type storeSnapshot struct {
	files map[string]storeFile // by path relative to the store
	dirs  map[string]bool
}

// snapshotStore records the store under dir.
func snapshotStore(dir string) (*storeSnapshot, error) {
	s := &storeSnapshot{files: map[string]storeFile{}, dirs: map[string]bool{}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile (a block dropped by retention)
			}
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			s.dirs[rel] = true
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		f := storeFile{size: info.Size()}
		if !strings.HasSuffix(path, ".blk") {
			if f.size > maxStoreFile {
				return fmt.Errorf("%s: %d bytes, too large to keep a copy", path, f.size)
			}
			if f.data, err = os.ReadFile(path); err != nil {
				return nil
			}
			f.size = int64(len(f.data))
		}
		s.files[rel] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot of the NATS store: %w", err)
	}
	return s, nil
}

// restore puts the store under dir back to the snapshot, as the disk would be
// after a crash: files and folders created since are removed, message blocks cut
// back to their size, the other files rewritten. It returns the message bytes
// dropped.
func (s *storeSnapshot) restore(dir string) (int64, error) {
	var dropped int64
	var extra []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			if !s.dirs[rel] {
				extra = append(extra, path)
				return fs.SkipDir
			}
			return nil
		}
		f, ok := s.files[rel]
		switch {
		case !ok:
			if info, err := d.Info(); err == nil && strings.HasSuffix(path, ".blk") {
				dropped += info.Size()
			}
			extra = append(extra, path)
		case f.data == nil:
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.Size() > f.size {
				dropped += info.Size() - f.size
				return os.Truncate(path, f.size)
			}
		default:
			return os.WriteFile(path, f.data, 0o644)
		}
		return nil
	})
	if err != nil {
		return dropped, fmt.Errorf("restore the NATS store: %w", err)
	}
	for _, p := range extra {
		if err := os.RemoveAll(p); err != nil {
			return dropped, fmt.Errorf("restore the NATS store: %w", err)
		}
	}
	return dropped, s.recreate(dir)
}

// recreate writes back the snapshot's files that are gone (a consumer deleted
// after the snapshot); message blocks that are gone stay gone.
func (s *storeSnapshot) recreate(dir string) error {
	rels := make([]string, 0, len(s.dirs))
	for rel := range s.dirs {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	for _, rel := range rels {
		if err := os.MkdirAll(filepath.Join(dir, rel), 0o755); err != nil {
			return fmt.Errorf("restore the NATS store: %w", err)
		}
	}
	for rel, f := range s.files {
		path := filepath.Join(dir, rel)
		if _, err := os.Stat(path); f.data == nil || err == nil {
			continue
		}
		if err := os.WriteFile(path, f.data, 0o644); err != nil {
			return fmt.Errorf("restore the NATS store: %w", err)
		}
	}
	return nil
}

// crash performs the crash fault (see above): kill is called at the moment of
// the crash to kill the pipeline processes that run on the same machine.
func (r *runner) crash(ctx context.Context, kill func()) (string, error) {
	b := r.b
	store := filepath.Join(b.cfg.Home, "data", "nats")
	before, _ := r.streamLastSeq(ctx)
	snap, err := snapshotStore(store)
	if err != nil {
		return "", err
	}
	time.Sleep(max(r.cfg.CrashLoss-time.Second, 0))
	aof, aofBefore, aofErr := b.redisIncrAOF()
	time.Sleep(time.Second)
	lastSeq, _ := r.streamLastSeq(ctx)

	var wg sync.WaitGroup
	for _, f := range []func(){b.nats.Kill, b.redis.Kill, kill} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	wg.Wait()
	dropped, err := snap.restore(store)
	if err != nil {
		return "", err
	}
	aofWhat := cutAOF(b, aof, aofBefore, aofErr)
	for _, name := range []string{"nats", "redis"} {
		if err := waitPortsFree(ctx, 60*time.Second, b.portsOf(name)...); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		if err := b.proc(name).Start(); err != nil {
			return "", err
		}
	}
	for _, name := range []string{"nats", "redis"} {
		if err := b.waitHealthy(ctx, name); err != nil {
			return "", err
		}
	}
	after, _ := r.streamLastSeq(ctx)
	wm, _ := r.watermark(ctx)
	return fmt.Sprintf("crash: SIGKILL nats, redis, bridge and aggregate; JetStream store back %s (stream last sequence %d at the copy, %d at the crash, %d after the restart; %d bytes of messages dropped); Redis %s (aggregate watermark %d after the restart)",
		r.cfg.CrashLoss, before, lastSeq, after, dropped, aofWhat, wm), nil
}

// cutAOF cuts Redis's incremental AOF back to the size it had a second before the
// crash and says what it did.
func cutAOF(b *brokerSet, path string, before int64, err error) string {
	if err != nil {
		return fmt.Sprintf("AOF kept (%v)", err)
	}
	path2, after, err := b.redisIncrAOF()
	switch {
	case err != nil:
		return fmt.Sprintf("AOF kept (%v)", err)
	case path2 != path:
		return "AOF kept (rewritten meanwhile)"
	case after <= before:
		return "AOF kept (nothing appended in the last second)"
	}
	if err := os.Truncate(path, before); err != nil {
		return fmt.Sprintf("AOF kept (%v)", err)
	}
	return fmt.Sprintf("last second of AOF dropped (%d bytes)", after-before)
}
