"""Exceptions raised by simspec.

Every error simspec raises on purpose derives from :class:`SimspecError`, so a
caller can catch them all at once; each subclass also derives from the built-in
exception a Python user would expect (``ValueError`` for bad parameters,
``ImportError`` for a missing optional dependency).  Messages say what to
change, not only what is wrong.
"""

from __future__ import annotations

__all__ = [
    "SimspecError",
    "InvalidParameterError",
    "TraceFormatError",
    "ProfileFormatError",
    "UnsupportedScenarioError",
    "OptionalDependencyError",
    "DistributionError",
    "VocabularyError",
    "ResourceLimitError",
]


class SimspecError(Exception):
    """Base class of every error simspec raises deliberately."""


class InvalidParameterError(SimspecError, ValueError):
    """A parameter is outside its domain (negative latency, acceptance > 1, ...)."""


class TraceFormatError(SimspecError, ValueError):
    """A trace or profile file is malformed; the message names the file and line."""


class ProfileFormatError(TraceFormatError):
    """A latency profile CSV is malformed; the message names the file, the line and the column."""


class UnsupportedScenarioError(SimspecError, ValueError):
    """The scenario is valid, but the chosen engine cannot model it.

    The message names the engine or option that can.
    """


class OptionalDependencyError(SimspecError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class DistributionError(InvalidParameterError):
    """A probability vector or matrix is malformed (does not sum to one, not row-stochastic, ...)."""


class VocabularyError(InvalidParameterError):
    """Vocabularies or the maps between them are inconsistent (empty intersection, mismatched maps, ...)."""


class ResourceLimitError(SimspecError, ValueError):
    """The work asked for would not finish in reasonable memory or time.

    Raised before any of it starts (not after minutes of swapping); the message
    names the argument or flag, the estimate, the limit and a value that works.
    The limits are generous for real use and are listed in ``simspec._checks``.
    """
