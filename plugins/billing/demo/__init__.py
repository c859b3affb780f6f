"""`billing demo`: the worked examples of the spine issue, end to end on a fresh warehouse."""
