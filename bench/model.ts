// How workload 2's rate follows from two rates measured apart. Its window pays for the changes' ingest and for
// their delivery on the same cores: were they done one after the other, each at the rate it reaches with the
// machine to itself, 100,000 changes would take N / I + N / D seconds. As ratios to the ceiling (i = I / C,
// d = D / C) the window's rate is then C / (1 / i + 1 / d). Measured: workload 1's rate stands for I (the same
// 1,000-absence batches), and workload 2's rate after the loader's last write for D (delivery alone). Over the
// runs of 2026-11-28 and 2026-11-29 that have both it predicted the measured ratio within 5 % in 21 of 27, and
// within 10 % in 25 (bench/README.md, "Findings").

/** The ratio to the ceiling of ingest at `ingest` × ceiling and delivery at `delivery` × ceiling in series. */
export function composedRatio(ingest: number, delivery: number): number {
  return 1 / (1 / ingest + 1 / delivery);
}

/**
 * The ratio one side needs for the composition to reach `target` when the other side stays at `other`:
 * undefined when no rate of it can (`other` is at or below the target).
 */
export function neededRatio(target: number, other: number): number | undefined {
  const rest = 1 / target - 1 / other;
  return rest > 0 ? 1 / rest : undefined;
}
