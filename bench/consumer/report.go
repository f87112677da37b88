package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// print writes every series as its median, _p90 and _max, then the
// summary ratios the issue names (each over the medians).
func (b *bench) print(out io.Writer) {
	line := func(name string, v float64, unit string) { fmt.Fprintf(out, "%s %s %s\n", name, fmtNum(v), unit) }
	med := func(name string) float64 { m, _, _ := quantiles(b.series[name]); return m }
	for _, name := range b.order {
		unit := "msg/s"
		switch {
		case strings.HasPrefix(name, "tail_p99_ms"):
			unit = "ms(p99)"
		case strings.HasPrefix(name, "tail_p50_ms"):
			unit = "ms(p50)"
		case strings.HasSuffix(name, "_per_msg"):
			unit = "writes/msg"
		case strings.HasPrefix(name, "catchup_") && strings.HasSuffix(name, "_per_s"):
			unit = "records/s"
		case name == "catchup_log_records":
			unit = "records"
		case strings.HasSuffix(name, "_run"):
			unit = "ratio"
		}
		m, p90, mx := quantiles(b.series[name])
		line(name, m, unit)
		if len(b.series[name]) > 1 {
			line(name+"_p90", p90, unit)
			line(name+"_max", mx, unit)
		}
	}
	overPlain, overOne, overPC, rawOverOne := math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1)
	for _, P := range partitionCounts {
		plain := med(fmt.Sprintf("drain_plain_%d", P))
		one := med(fmt.Sprintf("drain_ours_%d_m1", P))
		if plain == 0 || one == 0 {
			continue // not measured (ONLY)
		}
		for _, M := range memberCounts {
			ours := med(fmt.Sprintf("drain_ours_%d_m%d", P, M))
			line(fmt.Sprintf("drain_over_plain_%d_m%d", P, M), ours/plain, "ratio")
			overPlain = min(overPlain, ours/plain)
			if M > 1 {
				line(fmt.Sprintf("drain_more_over_one_%d_m%d", P, M), ours/one, "ratio")
				overOne = min(overOne, ours/one)
				if raw1, raw := med(fmt.Sprintf("drain_raw_%d_m1", P)), med(fmt.Sprintf("drain_raw_%d_m%d", P, M)); raw1 > 0 {
					line(fmt.Sprintf("raw_more_over_one_%d_m%d", P, M), raw/raw1, "ratio")
					rawOverOne = min(rawOverOne, raw/raw1)
				}
			}
			if pc := med(fmt.Sprintf("drain_pcgroups_%d_m%d", P, M)); pc > 0 {
				overPC = min(overPC, ours/pc)
			}
		}
	}
	if !math.IsInf(overPlain, 1) {
		line("drain_over_plain_min", overPlain, "ratio")
	}
	if !math.IsInf(overOne, 1) {
		line("drain_more_over_one_min", overOne, "ratio")
	}
	if !math.IsInf(rawOverOne, 1) {
		// The same ratio for bare ordered consumers: what the server's
		// filtered reads allow on this machine.
		line("raw_more_over_one_min", rawOverOne, "ratio")
	}
	if !math.IsInf(overPC, 1) {
		line("drain_over_pcgroups_min", overPC, "ratio")
	}
	if t := med("tail_p99_ms_plain"); t > 0 {
		line("tail_p99_over_plain", med("tail_p99_ms_ours")/t, "ratio")
	}
	if t := med("tail_p99_ms_pcgroups"); t > 0 {
		line("tail_p99_over_pcgroups", med("tail_p99_ms_ours")/t, "ratio")
	}
	if _, ok := b.series["floor_writes_per_msg"]; ok {
		line("floor_writes_per_msg", med("floor_writes_per_msg"), "writes/msg(median)")
	}
	if _, ok := b.series["catchup_raw_per_s"]; ok {
		line("catchup_over_raw", med("catchup_fold_per_s")/med("catchup_raw_per_s"), "ratio")
	}
}

func quantiles(v []float64) (med, p90, mx float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2], s[min(len(s)-1, len(s)*9/10)], s[len(s)-1]
}

func fmtNum(v float64) string {
	if math.Abs(v) >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}
