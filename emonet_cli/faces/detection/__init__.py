"""Face detection with MediaPipe's BlazeFace "back" model, with DISCOVER's rules and streams.

- `postprocess`: anchors, box decoding and weighted non-maximum suppression (numpy only);
- `blazeface`: the network in PyTorch and the `BlazeFace` detector;
- `detector`: the detector as a face source (`DetectionSettings`, `DetectedFaces`) and
  DISCOVER's rules for the faces it keeps (squaring, repeating the last);
- `boxstream`: DISCOVER's two box streams (`BoxStreamWriter`);
- `benchmark`: the detector's frames/s.

Importing this package imports no torch; only `blazeface` does.
"""
