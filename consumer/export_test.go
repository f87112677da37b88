package consumer

import "time"

// SetProgressBudget makes every member's progress records hold at most n
// bytes of entries (0: the budget the server's limits give), so that a
// test splits a few partitions' progress over several records.
func SetProgressBudget(n int) { progressBudgetForTest.Store(int64(n)) }

// SetTidyEvery sets how often engines started from now on take their full
// look at every partition (0: the default).
func SetTidyEvery(d time.Duration) { tidyForTest.Store(int64(d)) }
