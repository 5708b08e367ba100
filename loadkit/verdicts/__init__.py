"""Pure judgements: targets and thresholds, rate limit, pool visibility, cost, findings."""
