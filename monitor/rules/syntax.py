"""The watch-rule language: lexer, parser, immutable AST and canonical printer.

Grammar (precedence NEAR > NOT > AND > OR; juxtaposition is AND)::

    query    := or_expr EOF
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := unary (["AND"] unary)*
    unary    := "NOT" unary | "-" near | near
    near     := primary ["NEAR/" N primary]
    primary  := "(" or_expr ")" | FIELD ":" primary | "@" ALIAS | '"' phrase '"'
              | WORD ["*" | "~" [N]]

The parser is hand-written and every loop consumes a token, so parse time is linear in the query
length. User text never becomes a regular expression (ReDoS).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from typing import TypeAlias

from monitor.errors import MonitorError
from monitor.normalize import fold, is_no_space_script, tokenize_folded

__all__ = [
    "FIELDS",
    "TEXT_FIELDS",
    "And",
    "Near",
    "Node",
    "Not",
    "Or",
    "Query",
    "QueryError",
    "Term",
    "parse_query",
    "requires_something",
]

FIELDS = ("title", "summary", "source", "feed", "lang")
TEXT_FIELDS = ("title", "summary")  # where a term without a field is looked for
MIN_PREFIX = 3  # letters before `*`: `a*` would match a large part of any text
MAX_FUZZY = 2  # beyond 2 edits short names match unrelated words
AUTO_FUZZY_LONG = 8  # `term~` allows 2 edits from this many letters on, else 1
_MAX_NUMBER_DIGITS = 6  # int() of a huge digit string raises ValueError; keep numbers small
MAX_DEPTH = 50  # nesting of parentheses/NOT/aliases; deeper would hit Python's recursion limit

_ALIAS_NAME = re.compile(r"[A-Za-z0-9_-]+")  # fixed pattern, linear on any input
_FIELD_PREFIX = re.compile(r"([A-Za-z]+):")
_OPERATORS = {"AND", "OR", "NOT"}


class QueryError(MonitorError):
    """A watch-rule query is invalid. ``column`` is 1-based within ``line`` (1-based)."""

    def __init__(self, message: str, column: int, line: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.line = line

    def __str__(self) -> str:
        return f"query:{self.line}:{self.column}: {self.message}"


# ---------------------------------------------------------------------------------------------
# AST


@dataclass(frozen=True)
class Term:
    """A word, a phrase, a prefix (``Rusia*``) or a fuzzy word (``Shoigu~1``).

    ``text`` is what the user wrote (without quotes or modifiers); ``words`` is its folded words
    and ``glue[i]`` says word ``i`` must directly touch word ``i-1`` (characters of a no-space
    script such as ``普京``). Both derive from ``text``, so they take no part in equality.
    """

    text: str
    quoted: bool = False
    prefix: bool = False
    fuzzy: int | None = None
    field: str | None = None
    words: tuple[str, ...] = dc_field(default=(), compare=False, repr=False)
    glue: tuple[bool, ...] = dc_field(default=(), compare=False, repr=False)
    pos: int = dc_field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return _field_prefix(self.field) + self.pattern()

    def pattern(self) -> str:
        """The term as written, without its field."""
        body = f'"{self.text}"' if self.quoted else self.text
        if self.prefix:
            body += "*"
        if self.fuzzy is not None:
            body += f"~{self.fuzzy}"
        return body


@dataclass(frozen=True)
class Near:
    """Some occurrence of a left term within ``distance`` words of a right term, either order."""

    left: tuple[Term, ...]
    right: tuple[Term, ...]
    distance: int
    field: str | None = None
    pos: int = dc_field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        def side(terms: tuple[Term, ...]) -> str:
            if len(terms) == 1:
                return str(terms[0])
            return "(" + " OR ".join(str(t) for t in terms) + ")"

        body = f"{side(self.left)} NEAR/{self.distance} {side(self.right)}"
        return f"{self.field}:({body})" if self.field else body


@dataclass(frozen=True)
class Not:
    child: Node
    pos: int = dc_field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return "NOT " + _wrap(self.child, (And, Or))


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]
    pos: int = dc_field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return " AND ".join(_wrap(c, (Or,)) for c in self.children)


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]
    pos: int = dc_field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        # Parenthesize AND inside OR although precedence makes it redundant: the canonical form
        # never triggers the "mixes AND and OR" warning.
        return " OR ".join(_wrap(c, (And,)) for c in self.children)


Node: TypeAlias = Term | Near | Not | And | Or


def _field_prefix(name: str | None) -> str:
    return f"{name}:" if name else ""


def _wrap(node: Node, kinds: tuple[type, ...]) -> str:
    return f"({node})" if isinstance(node, kinds) else str(node)


@dataclass(frozen=True)
class Query:
    """A parsed watch-rule query. ``str(query)`` is a canonical form that parses back equal."""

    root: Node
    text: str = dc_field(default="", compare=False)
    mixes_and_or_without_parens: bool = dc_field(default=False, compare=False)

    def __str__(self) -> str:
        return str(self.root)

    def warnings(self) -> list[str]:
        """Things `check` should tell the user although the query is valid."""
        if self.mixes_and_or_without_parens:
            return [
                "query mixes AND and OR without parentheses; AND binds tighter, so "
                f"it reads as: {self}"
            ]
        return []


def requires_something(node: Node) -> bool:
    """True if every match of ``node`` contains at least one positive term occurrence."""
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(requires_something(c) for c in node.children)
    if isinstance(node, Or):
        return all(requires_something(c) for c in node.children)
    return True


def _first_not(node: Node) -> int:
    if isinstance(node, Not):
        return node.pos
    if isinstance(node, (And, Or)):
        for c in node.children:
            if not requires_something(c):
                return _first_not(c)
    return node.pos


# ---------------------------------------------------------------------------------------------
# Lexer


@dataclass(frozen=True)
class _Tok:
    kind: str  # WORD QUOTED LPAREN RPAREN AND OR NOT NEAR MINUS FIELD ALIAS EOF
    value: str
    pos: int  # 0-based offset in the query text
    number: int = 0


_STARTS_OPERAND = {"WORD", "QUOTED", "LPAREN", "NOT", "MINUS", "FIELD", "ALIAS"}
_STOP_CHARS = frozenset('()"')


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[_Tok] = []

    def error(self, message: str, pos: int) -> QueryError:
        return _error(self.text, message, pos)

    def run(self) -> list[_Tok]:
        text = self.text
        n = len(text)
        i = 0
        while i < n:
            c = text[i]
            if c.isspace():
                i += 1
            elif c == "(":
                self.tokens.append(_Tok("LPAREN", c, i))
                i += 1
            elif c == ")":
                self.tokens.append(_Tok("RPAREN", c, i))
                i += 1
            elif c == '"':
                end = text.find('"', i + 1)
                if end < 0:
                    raise self.error("unterminated quote: expected a closing '\"'", i)
                self.tokens.append(_Tok("QUOTED", text[i + 1 : end], i))
                i = end + 1
            else:
                j = i
                while j < n and not text[j].isspace() and text[j] not in _STOP_CHARS:
                    j += 1
                self._bare(text[i:j], i, j)
                i = j
        self.tokens.append(_Tok("EOF", "", n))
        return self.tokens

    def _bare(self, run: str, pos: int, end: int) -> None:
        while run.startswith("-"):
            self.tokens.append(_Tok("MINUS", "-", pos))
            run = run[1:]
            pos += 1
            if not run and (end >= len(self.text) or self.text[end].isspace()):
                raise self.error("expected a term right after '-'", pos)
        if not run:
            return
        if run in _OPERATORS:
            self.tokens.append(_Tok(run, run, pos))
            return
        if run.startswith("NEAR/"):
            digits = run[5:]
            if not (digits.isascii() and digits.isdigit()):
                raise self.error("expected a number after NEAR/", pos + 5)
            if len(digits) > _MAX_NUMBER_DIGITS:
                raise self.error("NEAR distance is too large", pos + 5)
            self.tokens.append(_Tok("NEAR", run, pos, int(digits)))
            return
        if run.startswith("@"):
            name = run[1:]
            if _ALIAS_NAME.fullmatch(name) is None:
                raise self.error("expected an alias name ([A-Za-z0-9_-]) after '@'", pos + 1)
            self.tokens.append(_Tok("ALIAS", name, pos))
            return
        m = _FIELD_PREFIX.match(run)
        if m is not None:
            name = m.group(1).lower()
            if name not in FIELDS:
                raise self.error(
                    f"unknown field '{m.group(1)}'; expected one of {', '.join(FIELDS)}", pos
                )
            self.tokens.append(_Tok("FIELD", name, pos))
            rest = run[m.end() :]
            if rest:
                self._bare(rest, pos + m.end(), end)
            return
        self.tokens.append(_Tok("WORD", run, pos))


def _error(text: str, message: str, pos: int) -> QueryError:
    line = text.count("\n", 0, pos) + 1
    line_start = text.rfind("\n", 0, pos) + 1
    return QueryError(message, pos - line_start + 1, line)


# ---------------------------------------------------------------------------------------------
# Parser


def _describe(tok: _Tok) -> str:
    if tok.kind == "FIELD":
        return f"'{tok.value}:'"
    if tok.kind == "MINUS":
        return "'-'"
    if tok.kind == "LPAREN":
        return "'('"
    return tok.value


def _flatten(kind: type[And] | type[Or], nodes: Sequence[Node], col: int) -> Node:
    out: list[Node] = []
    for n in nodes:
        if isinstance(n, kind):
            out.extend(n.children)
        else:
            out.append(n)
    if len(out) == 1:
        return out[0]
    return kind(tuple(out), col)


def _with_field(node: Node, name: str) -> Node:
    """Give ``name`` to every term below that has no field of its own (innermost field wins)."""
    if isinstance(node, (Term, Near)):
        return node if node.field is not None else replace(node, field=name)
    if isinstance(node, Not):
        return Not(_with_field(node.child, name), node.pos)
    return type(node)(tuple(_with_field(c, name) for c in node.children), node.pos)


class _Parser:
    def __init__(
        self,
        text: str,
        aliases: Mapping[str, Sequence[str]] | None,
        alias_stack: tuple[str, ...] = (),
        depth: int = 0,
    ) -> None:
        self.text = text
        self.aliases = aliases
        self.alias_stack = alias_stack
        self.toks = _Lexer(text).run()
        self.i = 0
        self.mixed = False
        self.depth = depth

    def nest(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"query nests deeper than {MAX_DEPTH} levels", pos)

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def advance(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def error(self, message: str, pos: int) -> QueryError:
        return _error(self.text, message, pos)

    def expect_operand(self, after: _Tok | None) -> None:
        if self.tok.kind in _STARTS_OPERAND:
            return
        where = f" after {_describe(after)}" if after is not None else ""
        if self.tok.kind == "RPAREN" and after is not None and after.kind == "LPAREN":
            raise self.error("empty parentheses: expected a term inside", self.tok.pos)
        raise self.error(f"expected a term{where}", self.tok.pos)

    def parse(self) -> Query:
        self.expect_operand(None)
        root = self.or_expr()
        if self.tok.kind == "RPAREN":
            raise self.error("unbalanced ')': no '(' to close", self.tok.pos)
        if self.tok.kind != "EOF":  # pragma: no cover - every other token starts an operand
            raise self.error(f"unexpected {_describe(self.tok)}", self.tok.pos)
        return Query(root, self.text, self.mixed)

    def or_expr(self) -> Node:
        col = self.tok.pos
        parts = [self.and_expr()]
        any_and = parts[0][1]
        while self.tok.kind == "OR":
            op = self.advance()
            self.expect_operand(op)
            parts.append(self.and_expr())
            any_and = any_and or parts[-1][1]
        if len(parts) > 1 and any_and:
            self.mixed = True
        return _flatten(Or, [p[0] for p in parts], col)

    def and_expr(self) -> tuple[Node, bool]:
        col = self.tok.pos
        nodes = [self.unary()]
        while True:
            if self.tok.kind == "AND":
                op = self.advance()
                self.expect_operand(op)
            elif self.tok.kind not in _STARTS_OPERAND:
                break
            nodes.append(self.unary())
        return _flatten(And, nodes, col), len(nodes) > 1

    def unary(self) -> Node:
        if self.tok.kind == "NOT":
            op = self.advance()
            self.expect_operand(op)
            self.nest(op.pos)
            node: Node = Not(self.unary(), op.pos)
            self.depth -= 1
            return node
        if self.tok.kind == "MINUS":
            op = self.advance()
            self.expect_operand(op)
            if self.tok.kind in ("MINUS", "NOT"):
                raise self.error("expected a term after '-'", self.tok.pos)
            return Not(self.near(), op.pos)
        return self.near()

    def near(self) -> Node:
        left = self.primary()
        if self.tok.kind != "NEAR":
            return left
        op = self.advance()
        if self.tok.kind not in ("WORD", "QUOTED", "LPAREN", "ALIAS", "FIELD"):
            raise self.error(f"expected a term after {op.value}", self.tok.pos)
        right_pos = self.tok.pos
        right = self.primary()
        if self.tok.kind == "NEAR":
            raise self.error("NEAR cannot be chained; combine two NEARs with AND", self.tok.pos)
        return Near(
            self.near_operand(left, left.pos),
            self.near_operand(right, right_pos),
            op.number,
            None,
            left.pos,
        )

    def near_operand(self, node: Node, pos: int) -> tuple[Term, ...]:
        terms = node.children if isinstance(node, Or) else (node,)
        out: list[Term] = []
        for t in terms:
            if not isinstance(t, Term):
                raise self.error("NEAR operands must be terms or phrases (or an OR of them)", pos)
            if t.field is not None:
                raise self.error(
                    "NEAR operands take no field; put it before the group: title:(a NEAR/3 b)",
                    pos,
                )
            out.append(t)
        return tuple(out)

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind == "LPAREN":
            self.advance()
            self.expect_operand(tok)
            self.nest(tok.pos)
            node = self.or_expr()
            self.depth -= 1
            if self.tok.kind != "RPAREN":
                col = _error(self.text, "", tok.pos).column
                raise self.error(f"expected ')' to close the '(' at column {col}", self.tok.pos)
            self.advance()
            return replace(node, pos=tok.pos)
        if tok.kind == "FIELD":
            self.advance()
            if self.tok.kind not in ("WORD", "QUOTED", "LPAREN", "ALIAS"):
                raise self.error(f"expected a term after {_describe(tok)}", self.tok.pos)
            return replace(_with_field(self.primary(), tok.value), pos=tok.pos)
        if tok.kind == "ALIAS":
            self.advance()
            return self.alias(tok)
        if tok.kind == "WORD":
            self.advance()
            return self.word(tok)
        if tok.kind == "QUOTED":
            self.advance()
            words, glue = self.words(tok.value, tok.pos + 1)
            return Term(tok.value, True, words=words, glue=glue, pos=tok.pos)
        raise self.error("expected a term", tok.pos)  # pragma: no cover - callers check

    def words(self, text: str, pos: int) -> tuple[tuple[str, ...], tuple[bool, ...]]:
        folded = fold(text)
        toks = tokenize_folded(folded)
        if not toks:
            raise self.error("expected a term with letters or digits", pos)
        glue = tuple(i > 0 and toks[i].fstart == toks[i - 1].fend for i in range(len(toks)))
        return tuple(t.word for t in toks), glue

    def word(self, tok: _Tok) -> Term:
        raw = tok.value
        core = raw
        prefix = False
        fuzzy: int | None = None
        auto_fuzzy = False
        if raw.endswith("*"):
            prefix = True
            core = raw[:-1]
        elif "~" in raw:
            k = raw.rfind("~")
            tail = raw[k + 1 :]
            core = raw[:k]
            if not tail:
                auto_fuzzy = True
            elif tail.isascii() and tail.isdigit() and len(tail) <= _MAX_NUMBER_DIGITS:
                fuzzy = int(tail)
                if fuzzy > MAX_FUZZY:
                    raise self.error(
                        f"edit distance after '~' must be 0 to {MAX_FUZZY}", tok.pos + k + 1
                    )
            else:
                raise self.error("expected a number after '~'", tok.pos + k + 1)
        for mark in ("*", "~"):
            k = core.find(mark)
            if k >= 0:
                raise self.error(f"'{mark}' is allowed only at the end of a term", tok.pos + k)
        words, glue = self.words(core, tok.pos)
        if prefix and sum(len(w) for w in words) < MIN_PREFIX:
            raise self.error(
                f"a wildcard needs at least {MIN_PREFIX} letters before '*'",
                tok.pos + len(raw) - 1,
            )
        if auto_fuzzy or fuzzy is not None:
            if len(words) != 1 or any(is_no_space_script(c) for c in words[0]):
                raise self.error(
                    "'~' (fuzzy) applies to a single word in a script written with spaces",
                    tok.pos,
                )
            if auto_fuzzy:
                fuzzy = 2 if len(words[0]) >= AUTO_FUZZY_LONG else 1
        return Term(core, False, prefix, fuzzy, words=words, glue=glue, pos=tok.pos)

    def alias(self, tok: _Tok) -> Node:
        name = tok.value
        if self.aliases is None or name not in self.aliases:
            raise self.error(f"unknown alias '@{name}'", tok.pos)
        if name in self.alias_stack:
            raise self.error(f"alias '@{name}' refers to itself", tok.pos)
        values = self.aliases[name]
        if isinstance(values, str):
            values = [values]
        if not values:
            raise self.error(f"alias '@{name}' is empty", tok.pos)
        nodes: list[Node] = []
        for value in values:
            try:
                sub = _Parser(
                    value, self.aliases, (*self.alias_stack, name), self.depth + 1
                ).parse()
            except QueryError as e:
                raise self.error(f"in alias '@{name}' value {value!r}: {e.message}", tok.pos) from e
            nodes.append(_recolumn(sub.root, tok.pos))
        return _flatten(Or, nodes, tok.pos)


def _recolumn(node: Node, pos: int) -> Node:
    """Point every node of an alias expansion at the `@name` that brought it in."""
    if isinstance(node, (Term, Near)):
        return replace(node, pos=pos)
    if isinstance(node, Not):
        return Not(_recolumn(node.child, pos), pos)
    return type(node)(tuple(_recolumn(c, pos) for c in node.children), pos)


def parse_query(text: str, aliases: Mapping[str, Sequence[str]] | None = None) -> Query:
    """Parse a watch-rule query; raise :class:`QueryError` with the column of the problem.

    ``aliases`` maps a name to query strings; ``@name`` expands to the OR of them.
    """
    query = _Parser(text, aliases).parse()
    if not requires_something(query.root):
        raise _error(
            text,
            "query only excludes (NOT/-); add a term it must contain",
            _first_not(query.root),
        )
    return query
