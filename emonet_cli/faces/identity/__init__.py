"""Who a face is, by the face itself: the identity layer under `people` (several people).

`descriptor` (dlib's face descriptor: the one module that loads dlib, and only when called),
`rule` (the decision: which known person a track's descriptors are, or someone new), `cuts`
(cuts and abrupt changes of the picture, where positions say nothing), `tracks` (position
tracking and identity together: people's numbers per frame), `gallery` (known people's names and
descriptors, read, written and made from photos). Everything but `descriptor` is numpy only.

The extra `identity` (`pip install 'emonet-cli[identity]'`: dlib-bin and
face-recognition-models) provides the descriptor; without it, people are told apart by
position alone (`tracking`), as before.
"""

IDENTITY_EXTRA = "identity"
INSTALL_COMMAND = "pip install 'emonet-cli[identity]'"
