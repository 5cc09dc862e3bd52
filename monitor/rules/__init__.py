"""The watch-rule language: ``parse_query`` a rule once, compile many into a ``RuleSet``.

A query such as ``"Kim Jong Un" AND (Putin OR Rusia*) -sport`` is parsed into an immutable
:class:`Query`; a :class:`RuleSet` indexes many of them so that matching an item evaluates only
the rules whose required words occur in it. Each match says which terms hit and where.
"""

from monitor.rules.compile import Hit, RequiredKeys, RuleMatch, RuleSet, required_keys
from monitor.rules.syntax import FIELDS, Query, QueryError, parse_query

__all__ = [
    "FIELDS",
    "Hit",
    "Query",
    "QueryError",
    "RequiredKeys",
    "RuleMatch",
    "RuleSet",
    "parse_query",
    "required_keys",
]
