package join

import "sync"

// Each calls f(i) for i in [0, n), at most parallel at a time, and returns
// when all have returned: the bound on concurrent joins and pushes.
func Each(n, parallel int, f func(i int)) {
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}
