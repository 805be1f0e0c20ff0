"""File formats every stage reads or writes: atomic files and part files (`fileio`), SSI
streams (`streams`) and NOVA annotations (`annotations`)."""
