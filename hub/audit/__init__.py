"""The audit chain: hash-chained, keyed entries of every disclosure and refusal."""
