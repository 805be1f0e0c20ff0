"""Many inputs: `one_input` (`ModelOptions`, `Outcome`, one input into its files), `runner`
(`run_many`, `detect_many`: one outcome per input, locally) and `cluster` (the same on Dask)."""
