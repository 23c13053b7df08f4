"""Analysis of fits: predictions, effective data, compute-optimal sizes, timelines, comparison, checks and
calibration."""
