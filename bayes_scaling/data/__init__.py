"""Data: readers and validation of run tables (:mod:`.tables`), simulation (:mod:`.simulate`) and the bundled
data sets (:mod:`.datasets`)."""
