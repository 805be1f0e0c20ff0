"""Per-frame results and the files they are written to: `results` (`ResultBatch`, smoothing,
the summary, the results CSV read back) and `writers` (the `OUTPUTS` table: one entry per
output file). No torch."""
