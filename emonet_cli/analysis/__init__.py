"""One input through the chain: `pipeline` (`Analysis`: decode, boxes, crops, batches, model,
per-frame results) and `analyze` (`analyze_file`: an Analysis into its output files, every
person's)."""
