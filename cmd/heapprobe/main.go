package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/internal/embedded"
)

func main() {
	dir, _ := os.MkdirTemp("", "hp")
	l, err := embedded.StartLocal(dir)
	if err != nil {
		panic(err)
	}
	defer l.Close()
	P := 100000
	parts := make([]string, P)
	for i := range parts {
		parts[i] = fmt.Sprintf("p-%06d", i)
	}
	var n atomic.Int64
	cfg := parti.Fast("heap")
	cfg.ID = "w0"
	cfg.Partitions = parts
	cfg.ExpectedMembers = 1
	var rv [8]atomic.Int64
	cfg.Handler = parti.HandlerFuncs{OnAssigned: func(a parti.Assignment) { n.Add(1) }, OnRevoked: func(a parti.Assignment, why parti.RevokeReason) { n.Add(-1); rv[why].Add(1) }}
	ctx := context.Background()
	cf, _ := os.Create("/tmp/cpu.prof")
	pprof.StartCPUProfile(cf)
	t0 := time.Now()
	m, err := parti.Join(ctx, l.JS, cfg)
	if err != nil {
		panic(err)
	}
	for n.Load() < int64(P) {
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Println("all assigned after", time.Since(t0))
	time.Sleep(2 * time.Second)
	pprof.StopCPUProfile()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	for i := range rv { if v := rv[i].Load(); v > 0 { fmt.Println(parti.RevokeReason(i), v) } }
	fmt.Println("heap inuse MB", float64(ms.HeapInuse)/(1<<20))
	f, _ := os.Create("/tmp/heap.prof")
	pprof.WriteHeapProfile(f)
	f.Close()
	m.Stop()
}
