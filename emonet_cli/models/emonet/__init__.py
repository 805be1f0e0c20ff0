"""EmoNet (Toisoul et al. 2021): `model` (the network, as the paper draws it), `checkpoint`
(safe loading of the published and fine-tuned weights), `inference` (`Predictor`: batches,
device, precision, landmark decoding)."""
