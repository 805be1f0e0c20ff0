"""`emonet evaluate`: label files (`labels`, `affectnet`), the paper's scores (`metrics`) and the
scoring of a model on labelled faces (`scoring`)."""
