"""EMOTIC: emotion in context from a person's body and the whole scene (Kosti, Alvarez,
Recasens, Lapedriza, "Context based emotion recognition using EMOTIC dataset", TPAMI 2019),
with the weights of Tandon's PyTorch re-implementation (github.com/Tandon-A/emotic).

`network` is the model, `safeload` reads the published files without running their pickles,
`preprocess` and `metrics` need no torch. Nothing is imported here, so that importing the
torch-free modules stays torch-free."""
