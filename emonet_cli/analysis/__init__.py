"""One input through the chain: `pipeline` (`Analysis`: decode, faces, crops, batches, model,
per-frame results; `feed` is one input's decode -> faces -> crops), `analyze` (`analyze_file`:
an Analysis into its output files, every person's) and `detected` (`detect_file`: the same
faces, without the model, into DISCOVER's box streams: `emonet detect`)."""
