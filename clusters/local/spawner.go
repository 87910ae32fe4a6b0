package local

import (
	"runtime"
	"sync"
)

// Children started without OutliveCaller carry Pdeathsig, which Linux
// delivers when the *thread* that forked them exits, not the process.
// Go ends a thread whenever a goroutine that locked it exits still
// locked, which is exactly what netns.Do does; any thread may take that
// role later. So every such child is forked from one thread that a
// goroutine holds locked for the life of the process and never lends out.
var (
	spawnOnce sync.Once
	spawnCh   chan func()
)

// onSpawnerThread runs fn on the dedicated forking thread and waits.
func onSpawnerThread(fn func()) {
	spawnOnce.Do(func() {
		spawnCh = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives on
			for f := range spawnCh {
				f()
			}
		}()
	})
	done := make(chan struct{})
	spawnCh <- func() {
		defer close(done)
		fn()
	}
	<-done
}
