package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parti-io/parti/replay"
	"github.com/parti-io/parti/replay/replaytest"
)

// updateScreenshot rewrites the screenshot README shows:
//
//	go test ./cmd/parti-replay -run TestReportInABrowser -update-screenshot
var updateScreenshot = flag.Bool("update-screenshot", false, "write docs/timeline.png from the browser test")

// chromium finds a Chromium: $PARTI_CHROMIUM, or one on PATH. Without one
// the browser tests skip, except on CI (CI=true), where they fail: CI
// installs Debian's chromium so that they always run there.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PARTI_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium found on CI: .ci/run installs Debian's chromium (apt-get install chromium); set PARTI_CHROMIUM to its path")
	}
	t.Skip("no Chromium found: install one (Debian: apt-get install chromium) or set PARTI_CHROMIUM to run the browser tests")
	return ""
}

// browser starts a headless Chromium for the test and returns its context.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(cancelB)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestReportInABrowser writes the report of the scenario history and
// checks in a real browser what it shows: a lane per member incarnation,
// the crash verdict among the events, the unowned interval the crash left,
// a lane's partitions on a click on the chart, and a partition's history
// from the search box and from a click on a partition.
func TestReportInABrowser(t *testing.T) {
	ctx := browser(t)
	page := filepath.Join(t.TempDir(), "report.html")
	stdout, stderr := newWatchBuffer(), newWatchBuffer()
	if code := run(t.Context(), []string{"report", "--file", "testdata/history.jsonl", "--out", page}, stdout, stderr); code != 0 {
		t.Fatalf("report exit %d: %s", code, stderr)
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	if err := chromedp.Do(ctx,
		chromedp.Navigate("file://"+page),
		chromedp.WaitVisible(css(`body[data-ready="true"]`)),
	); err != nil {
		t.Fatalf("browser: %v", err)
	}
	eval := func(expr string, v any) {
		t.Helper()
		var err error
		switch p := v.(type) {
		case *int:
			*p, err = chromedp.Run(ctx, chromedp.Evaluate[int](expr))
		case *bool:
			*p, err = chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		case *string:
			*p, err = chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		}
		if err != nil {
			t.Fatalf("browser: %s: %v", expr, err)
		}
	}
	var (
		lanes, events, unowned int
		summary, detail, hist  string
		expired                bool
	)
	eval(`document.querySelectorAll("#labels .lane-label[data-lane]").length`, &lanes)
	eval(`document.querySelectorAll("#events tbody tr").length`, &events)
	eval(`document.querySelectorAll("#unowned tbody tr").length`, &unowned)
	eval(`[...document.querySelectorAll("#events tbody tr")].some(r => r.dataset.kind === "expired" && r.textContent.includes("worker-1/1"))`, &expired)
	eval(`document.getElementById("summary").textContent`, &summary)
	// A click on worker-0/1's lane label lists what it holds; a click on
	// the first partition listed shows its history.
	if err := chromedp.Do(ctx,
		chromedp.Click(css(`#labels .lane-label[data-lane="0"]`)),
		chromedp.WaitVisible(css(`#detail-head`)),
	); err != nil {
		t.Fatalf("browser: %v", err)
	}
	eval(`document.getElementById("detail-head").textContent`, &detail)
	if err := chromedp.Do(ctx,
		chromedp.Click(css(`#detail a.part`)),
		chromedp.WaitVisible(css(`#history-head`)),
	); err != nil {
		t.Fatalf("browser: %v", err)
	}
	eval(`document.getElementById("history-head").textContent`, &hist)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("browser: screenshot: %v", err)
	}
	if lanes != 5 {
		t.Errorf("%d lanes shown; want 5 (worker-0..3 and worker-2's restart)", lanes)
	}
	if events != 16 || !expired {
		t.Errorf("%d events shown (want 16), the crash verdict on worker-1/1 among them: %v", events, expired)
	}
	if unowned < 1 {
		t.Errorf("no unowned interval shown; the crash left partitions unowned until the next decision")
	}
	if !strings.Contains(summary, "12 partitions") || !strings.Contains(summary, "1 crash verdicts") {
		t.Errorf("summary %q; want 12 partitions and 1 crash verdict", summary)
	}
	if !strings.HasPrefix(detail, "worker-0/1 held at ") || strings.HasSuffix(detail, ": 0 partitions") {
		t.Errorf("lane detail %q; want worker-0/1 holding partitions", detail)
	}
	if !strings.Contains(hist, "change") || !strings.Contains(hist, "now worker-") {
		t.Errorf("partition history %q; want its changes and its owner now", hist)
	}

	// The search box: p-00 was moved by an operator (alice).
	if err := chromedp.Do(ctx,
		chromedp.SetValue(css(`#pid`), "p-00"),
		chromedp.Click(css(`#find button`)),
		chromedp.WaitVisible(css(`#history table`)),
	); err != nil {
		t.Fatalf("browser: %v", err)
	}
	var rows string
	eval(`document.querySelector("#history tbody").textContent`, &rows)
	if !strings.Contains(rows, "alice") {
		t.Errorf("p-00's history does not show the operator's move by alice:\n%s", rows)
	}

	out := filepath.Join(t.TempDir(), "timeline.png")
	if *updateScreenshot {
		out = filepath.Join("..", "..", "docs", "timeline.png")
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(shot))
}

// TestServeInABrowser serves a live group's timeline and checks that the
// page in a browser redraws as records are appended.
func TestServeInABrowser(t *testing.T) {
	ctx := browser(t)
	url, _, b := liveServer(t, t.TempDir())
	for _, id := range []string{"worker-0", "worker-1"} {
		b.Claim(id)
	}
	b.Heartbeats()
	b.Declare(replaytest.PartitionIDs(8), "sticky", 0)
	b.CloseWindow(100)
	b.Decide()
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	rctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout, stderr := newWatchBuffer(), newWatchBuffer()
	done := make(chan int, 1)
	go func() {
		done <- run(rctx, []string{"serve", "--server", url, "--group", "orders", "--http", "127.0.0.1:0", "--refresh", "200ms"}, stdout, stderr)
	}()
	line := stdout.waitFor(t, "the serving line", 10*time.Second, func(s string) bool { return strings.Contains(s, "http://") })
	addr := strings.Fields(line[strings.Index(line, "http://"):])[0]

	lanesIs := func(n int) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Poll[bool](fmt.Sprintf(`document.querySelectorAll("#labels .lane-label[data-lane]").length === %d`, n), chromedp.WithPollingTimeout(20*time.Second))(ctx, tg)
			return err
		})
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(addr), lanesIs(2)); err != nil {
		t.Fatalf("the live page does not show the two members: %v", err)
	}
	b.Claim("worker-2")
	b.Heartbeats()
	b.CloseWindow(100)
	b.Decide()
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	if err := chromedp.Do(ctx, lanesIs(3)); err != nil {
		t.Fatalf("the live page did not redraw with the third member: %v", err)
	}
	live, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("live").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(live, "live") {
		t.Errorf("live indicator %q", live)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exit %d: %s", code, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop on cancel")
	}
}

// reportLarge runs the report at the scale: go test ./cmd/parti-replay
// -run TestReportAtScale -report-large (make bench-report).
var (
	reportLarge   = flag.Bool("report-large", false, "TestReportAtScale: write and open the report of a 500-member, 100,000-partition history")
	reportHistory = flag.String("report-history", "", "TestReportAtScale: the history file (generated there if missing)")
)

// TestReportAtScale writes the report of a 500-member, 100,000-partition
// history with 200,000 records and opens it in the browser: it prints the
// page's size and how long writing and opening took, and fails when the
// page exceeds 20 MB or the browser does not draw it.
func TestReportAtScale(t *testing.T) {
	if !*reportLarge {
		t.Skip("large: run with -report-large (make bench-report)")
	}
	dir := t.TempDir()
	hist := *reportHistory
	if _, err := os.Stat(hist); hist == "" || err != nil {
		if hist == "" {
			hist = filepath.Join(dir, "large.jsonl")
		}
		f, err := os.Create(hist)
		if err != nil {
			t.Fatal(err)
		}
		w := replay.NewWriter(f)
		rec := replaytest.NewRecorder(replaytest.Base, time.Millisecond)
		rec.Sink = w.Write
		start := time.Now()
		if _, err := replaytest.Generate(replaytest.GenerateConfig{Group: "large", Members: 500, Partitions: 100_000, Records: 200_000, HeartbeatsPerRound: 20, Seed: 1}, rec); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		t.Logf("generated %d records in %v", rec.Count(), time.Since(start).Round(time.Millisecond))
	}
	page := filepath.Join(dir, "large.html")
	start := time.Now()
	stdout, stderr := newWatchBuffer(), newWatchBuffer()
	if code := run(t.Context(), []string{"report", "--file", hist, "--out", page}, stdout, stderr); code != 0 {
		t.Fatalf("report exit %d: %s", code, stderr)
	}
	wrote := time.Since(start)
	fi, err := os.Stat(page)
	if err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	start = time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+page), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`))); err != nil {
		t.Fatalf("the browser did not draw the page: %v", err)
	}
	opened := time.Since(start)
	fmt.Printf("report_members 500 count\nreport_partitions 100000 count\nreport_write %.2f s\nreport_page_size %.1f MB\nreport_open %.2f s\n%s",
		wrote.Seconds(), float64(fi.Size())/1e6, opened.Seconds(), stdout)
	if fi.Size() > 20<<20 {
		t.Errorf("the page is %.1f MB; want at most 20 MB", float64(fi.Size())/(1<<20))
	}
}
