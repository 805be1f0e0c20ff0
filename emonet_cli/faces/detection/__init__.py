"""Face detection with MediaPipe's BlazeFace "back" model, written as DISCOVER's box streams.

- `postprocess`: anchors, box decoding and weighted non-maximum suppression (numpy only);
- `boxstream`: one face per frame, squaring and repeat-last, and the two SSI streams (numpy
  only);
- `blazeface`: the network in PyTorch and the `BlazeFace` detector;
- `source`: the detector as a box source of the analysis (`DetectionSettings`, the lookup);
- `run`: a video or image through the detector into its box streams;
- `benchmark`: the detector's frames/s.

Importing this package imports no torch; only `blazeface` does.
"""
