"""Mean and spread over seeds or runs, as every benchmark reports a figure that moves run to run."""

import statistics


def mean_sd(values):
    """(mean, sample standard deviation) of the values; the spread of a single value is 0."""
    values = [float(value) for value in values]
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def mean_and_spread(values):
    """'mean ± sample standard deviation' for a table (just the value for one run)."""
    values = list(values)
    if len(values) == 1:
        return f"{values[0]:.3g}"
    mean, sd = mean_sd(values)
    return f"{mean:.3g} ± {sd:.2g}"
