"""Speed measurements: printed, never asserted (`make bench`)."""
