"""The EFA's constants (our choices unless a comment says otherwise) and its errors."""

from __future__ import annotations

CORRELATIONS = ("tetrachoric", "polychoric", "pearson")
EXTRACTIONS = ("minres", "ml")
ROTATIONS = ("oblimin", "promax", "varimax", "none")
#: How :func:`parallel_words` treats words tied at its cap: all counted, or none.
PARALLEL_TIES = ("include", "exclude")
OBLIQUE = ("oblimin", "promax")

#: A word must occur in at least this share of units (and in at most 1 minus it) to enter the analysis.
#: Tetrachoric and phi correlations of words that almost never (or almost always) occur rest on a
#: handful of units and are unstable; 5% is our choice (the paper does not say).
DEFAULT_MIN_FREQUENCY = 0.05
#: ... and in at least this many units, whatever the share.
DEFAULT_MIN_UNITS = 5
#: By default every word above the frequency floor is analysed (``max_words=None``): a cap on the
#: number of words keeps the most frequent ones, and a factor whose words happen to be rarer in a
#: sample loses most of them (notebook 07, "Which words to keep"). ``max_words="auto"``, the rule
#: before, keeps at most ``n_units // DEFAULT_UNITS_PER_WORD`` words (the most frequent),
#: so that the correlation matrix of the words can be estimated from the units (n > p).
DEFAULT_UNITS_PER_WORD = 2
#: Parallel analysis counts the factors on at most ``n_units // DEFAULT_UNITS_PER_COUNTED_WORD`` words, the
#: most frequent (``parallel_max_words="auto"``): with as many words as units it over-extracts on
#: simulated word data, with a third of that it finds the planted count (notebook 07). Our choice.
DEFAULT_UNITS_PER_COUNTED_WORD = 3
#: A word is assigned to its primary factor when its absolute loading reaches this cut-off
#: (a common convention; ours, the paper does not give one).
DEFAULT_CUTOFF = 0.30
#: ``choose_n_factors`` keeps at least this many words per factor (a factor needs three indicators to be
#: determined on its own); with few words it extracts fewer factors rather than an unstable solution.
MIN_WORDS_PER_FACTOR = 3
#: psych's correction for empty cells of a 2x2 table in tetrachoric correlations.
DEFAULT_CORRECT = 0.5
#: Uniquenesses are bounded like psych and factor_analyzer (0.005..1); one at the lower bound is a Heywood case.
PSI_BOUNDS = (0.005, 1.0)


class EFAInputError(ValueError):
    """The data cannot support the requested analysis (too few units or words, wrong coding...)."""


class SingularMatrixError(EFAInputError):
    """The correlation matrix is singular (or not positive definite) and smoothing is off."""
