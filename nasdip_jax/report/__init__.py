"""Files people read: PNGs, figures, metrics.jsonl, config.json and summary.json."""
