"""What every capability shares: errors, progress events, data checks and fingerprints,
training options, prediction, which run trained a model object, the package-version collector
and the metric-name conventions (the one headline list, which direction is better)."""
