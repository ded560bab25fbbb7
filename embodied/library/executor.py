"""A restricted, in-process executor for learned skill code (Voyager-style skills stored as source).

A learned skill is the source of ONE function whose first parameter is the skill API and whose other
parameters are object names, e.g.::

    def build_tower(api, bottom, middle, top):
        \"\"\"Stack middle on bottom, then top on middle.\"\"\"
        for lower, upper in zip([bottom, middle], [middle, top]):
            if api.on(upper) != lower:
                api.pick_and_place(upper, lower)
        return api.on(top)

Containment is in three layers:

1. **Static rules** (`check_source`, on the `ast`): one plain ``def``; no imports, classes, nested defs,
   global/nonlocal, try, with, raise, yield/await, del or match; no identifier starting with ``_``; attributes
   limited to the API's listed methods (on the API parameter only) and an allowlist of plain-data methods;
   names limited to parameters, the skill's own locals and a small set of builtins. A violation raises
   `SkillCodeError` naming the skill, the line and the rule.
2. **Rewrites** before compiling: ``*``, ``**``, ``<<``, ``+``, ``%`` (and their augmented forms), starred
   displays, f-string fields and the growth methods (join, replace, extend, update, union, ...) go through
   guard functions that check the size of the result *before* building it; ``range``, ``sum``, ``round``,
   ``str`` and ``print`` are guarded replacements; ``__builtins__`` holds only the allowed builtins.
3. **A budget tracer** (`sys.settrace`, skill frames only): lines, wall time and resident-memory growth;
   exceeding one raises `SkillAbort`, which skill code cannot catch (it has no ``try``).

`run_skill` never raises for what the skill does at run time: it returns ``ExecResult(False, reason)``.
"""

from __future__ import annotations

import ast
import keyword
import logging
import math
import operator
import os
import re
import reprlib
import sys
import time
from collections.abc import Callable, Collection, ItemsView, KeysView, Mapping, Sequence, ValuesView
from dataclasses import dataclass, fields
from types import FrameType
from typing import Any

from embodied.world.errors import EmbodiedError

logger = logging.getLogger(__name__)

# Plain-data methods skill code may call on its own values (lists, dicts, sets, strings).
DATA_METHODS = frozenset({
    "append", "extend", "insert", "pop", "remove", "index", "count", "sort", "reverse", "copy", "clear",
    "keys", "values", "items", "get", "setdefault", "update", "add", "discard", "union", "intersection",
    "difference", "split", "strip", "lstrip", "rstrip", "startswith", "endswith", "lower", "upper", "replace",
    "join", "find", "isdigit", "title",
})
# Builtins skill code may read; everything else (open, eval, getattr, type, ...) is not available.
SAFE_BUILTINS = (
    "len", "range", "enumerate", "zip", "min", "max", "sorted", "reversed", "list", "dict", "tuple", "set",
    "frozenset", "str", "int", "float", "bool", "abs", "sum", "any", "all", "round", "print",
)
MAX_INT_BITS = 100_000      # largest integer a single *, **, << may build (about 30,000 decimal digits)
MAX_SOURCE_CHARS = 50_000   # longest skill source accepted
_CHECK_EVERY = 100          # traced lines between wall-time / resident-memory checks
_MAX_DEPTH = 50             # deepest nesting of plain data passed across the executor boundary
_GROWTH_METHODS = frozenset({"join", "replace", "extend", "update", "union", "intersection", "difference"})
_SEQ_TYPES = (str, bytes, list, tuple)
_FORBIDDEN: dict[type, tuple[str, str]] = {  # node type -> (rule, hint)
    ast.Import: ("imports are not allowed", ""),
    ast.ImportFrom: ("imports are not allowed", ""),
    ast.ClassDef: ("class definitions are not allowed", ""),
    ast.FunctionDef: ("nested function definitions are not allowed", "use a lambda"),
    ast.AsyncFunctionDef: ("nested function definitions are not allowed", "use a lambda"),
    ast.Global: ("global declarations are not allowed", ""),
    ast.Nonlocal: ("nonlocal declarations are not allowed", ""),
    ast.Try: ("try/except is not allowed", "failures must reach the executor"),
    ast.With: ("with statements are not allowed", ""),
    ast.AsyncWith: ("with statements are not allowed", ""),
    ast.Raise: ("raise is not allowed", "return a value instead"),
    ast.Yield: ("yield is not allowed", ""),
    ast.YieldFrom: ("yield is not allowed", ""),
    ast.Await: ("await is not allowed", ""),
    ast.Delete: ("del is not allowed", ""),
    ast.Match: ("match statements are not allowed", ""),
}
if hasattr(ast, "TryStar"):  # Python >= 3.11
    _FORBIDDEN[ast.TryStar] = ("try/except is not allowed", "failures must reach the executor")


def _forbidden(node: ast.AST) -> str | None:
    """The rule a forbidden node breaks, with the offending code, or None."""
    entry = _FORBIDDEN.get(type(node))
    if entry is None:
        return None
    rule, hint = entry
    return f"{rule} ({_snippet(node)})" + (f"; {hint}" if hint else "")


class SkillCodeError(EmbodiedError):
    """Static rule violation: message names the skill, the rule and the line, e.g.
    "skill 'x', line 3: imports are not allowed (import os)"."""


class SkillAbort(BaseException):
    """Raised by the skill API (e.g. when a primitive fails) or by the budget tracer to stop the skill; carries .reason (str)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = str(reason)


@dataclass(frozen=True)
class Budget:
    """Limits for one skill run; each bounds a different way a skill can run away."""

    max_lines: int = 100_000       # traced line events inside skill code (catches endless loops)
    max_seconds: float = 300.0     # wall time, including the API calls it makes (physics)
    max_memory_mb: float = 256.0   # growth of the process's resident memory while it runs
    max_sequence: int = 100_000    # largest list/str/bytes/range a single operation may build

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            integral = f.name in ("max_lines", "max_sequence")
            ok_type = isinstance(value, int) if integral else isinstance(value, int | float)
            if isinstance(value, bool) or not ok_type or not value > 0 or (not integral and math.isinf(value)):
                kind = "a positive integer" if integral else "a positive finite number"
                raise EmbodiedError(f"Budget.{f.name} must be {kind}, got {value!r}")


DEFAULT_BUDGET = Budget()


@dataclass(frozen=True)
class SkillSpec:
    """What the static check learned about a skill's source."""

    name: str            # the function's name
    params: list[str]    # parameter names after the first (the API)
    api_param: str       # the first parameter's name
    docstring: str       # "" when absent
    api_calls: list[str]  # API method names the code calls (from the AST), in order of first appearance


@dataclass
class ExecResult:
    """Outcome of one skill run: success, the reason on failure, the return value and what it cost."""

    success: bool
    reason: str = ""        # empty on success; e.g. "step budget exceeded (100000 lines)"
    value: Any = None       # the function's return value (plain data only)
    lines: int = 0
    seconds: float = 0.0


# --------------------------------------------------------------------------------------------------- checks

@dataclass(frozen=True)
class _Checked:
    """A checked skill: its spec, its parsed module and how many trailing parameters have defaults."""

    spec: SkillSpec
    tree: ast.Module
    n_defaults: int


def _validate_methods(api_methods: Collection[str]) -> frozenset[str]:
    """The API method names as a set; reject names skill code could not (or must not) spell."""
    if isinstance(api_methods, str):
        raise EmbodiedError(f"api_methods must be a collection of names, got the string {api_methods!r}")
    methods = frozenset(api_methods)
    for m in sorted(methods, key=str):
        if not isinstance(m, str) or not m.isidentifier() or keyword.iskeyword(m) or m.startswith("_"):
            raise EmbodiedError(f"api_methods: {m!r} is not a usable method name (identifier, no leading '_')")
    return methods


def _guess_name(source: str) -> str:
    match = re.search(r"def\s+([A-Za-z_]\w*)", source)
    return match.group(1) if match else "?"


def _parse(source: str) -> ast.Module:
    """Parse skill source, turning parser failures into SkillCodeError."""
    if not isinstance(source, str):
        raise SkillCodeError(f"skill source must be a str, got {type(source).__name__}")
    name = _guess_name(source)
    if len(source) > MAX_SOURCE_CHARS:
        raise SkillCodeError(f"skill '{name}': source is too long ({len(source)} characters, limit {MAX_SOURCE_CHARS})")
    try:
        return ast.parse(source, filename=f"<skill:{name}>", mode="exec")
    except SyntaxError as exc:
        raise SkillCodeError(f"skill '{name}', line {exc.lineno}: syntax error ({exc.msg})") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise SkillCodeError(f"skill '{name}': source cannot be parsed ({type(exc).__name__}: {exc})") from None


def _top_level_def(tree: ast.Module, source: str) -> ast.FunctionDef:
    """The single plain def the source must consist of."""
    guess = _guess_name(source)
    if not tree.body:
        raise SkillCodeError(f"skill '{guess}': source is empty; expected one function definition")
    for stmt in tree.body:
        if isinstance(stmt, ast.AsyncFunctionDef):
            raise SkillCodeError(f"skill '{stmt.name}', line {stmt.lineno}: skill must be a plain def, not async def")
        if not isinstance(stmt, ast.FunctionDef):
            rule = _forbidden(stmt)
            what = rule or (
                f"skill source must be exactly one function definition, found {type(stmt).__name__} at top level")
            raise SkillCodeError(f"skill '{guess}', line {stmt.lineno}: {what}")
    if len(tree.body) != 1:
        raise SkillCodeError(f"skill '{guess}', line {tree.body[1].lineno}: skill source must be exactly one "
                             f"function definition, found {len(tree.body)}")
    return tree.body[0]  # type: ignore[return-value]


def _snippet(node: ast.AST, limit: int = 60) -> str:
    try:
        text = ast.unparse(node).splitlines()[0]
    except (ValueError, IndexError, RecursionError):
        return type(node).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check(source: str, api_methods: Collection[str]) -> _Checked:
    """Parse and check skill source; return the spec and tree or raise SkillCodeError on the first violation."""
    methods = _validate_methods(api_methods)
    tree = _parse(source)
    func = _top_level_def(tree, source)
    name = func.name

    def fail(line: int, rule: str) -> SkillCodeError:
        return SkillCodeError(f"skill '{name}', line {line}: {rule}")

    if name.startswith("_"):
        raise fail(func.lineno, f"names starting with '_' are not allowed ({name!r})")
    if func.decorator_list:
        raise fail(func.decorator_list[0].lineno, "decorators are not allowed")
    a = func.args
    if a.vararg or a.kwarg:
        raise fail(func.lineno, "*args/**kwargs are not allowed")
    if a.posonlyargs or a.kwonlyargs:
        raise fail(func.lineno, "only plain positional parameters are allowed (no '/' or '*' markers)")
    if not a.args:
        raise fail(func.lineno, "the skill needs at least one parameter (the API)")
    for default, arg in zip(a.defaults, a.args[len(a.args) - len(a.defaults):], strict=True):
        if not isinstance(default, ast.Constant):
            raise fail(default.lineno, f"default values must be constants (parameter {arg.arg!r})")
    api_param = a.args[0].arg
    params = [p.arg for p in a.args[1:]]

    # Names the skill binds itself: parameters, assignment / loop / comprehension / walrus targets, lambda args.
    bound = {p.arg for p in a.args}
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    readable = bound | set(SAFE_BUILTINS) | {name}

    problems: list[tuple[int, int, str]] = []

    def bad(node: ast.AST, rule: str) -> None:
        problems.append((getattr(node, "lineno", func.lineno), getattr(node, "col_offset", 0), rule))

    api_uses: list[tuple[int, int, str]] = []
    for node in ast.walk(func):
        if node is func:
            continue
        rule = _forbidden(node)
        if rule is not None:
            bad(node, rule)
        elif isinstance(node, ast.Name):
            if node.id.startswith("_") and node.id != "_":
                bad(node, f"name {node.id!r} is not available in skill code (names starting with '_' are not allowed)")
            elif isinstance(node.ctx, ast.Store) and node.id == api_param:
                bad(node, f"the API parameter {api_param!r} cannot be reassigned")
            elif isinstance(node.ctx, ast.Load) and node.id not in readable:
                bad(node, f"name {node.id!r} is not available in skill code")
        elif isinstance(node, ast.arg):
            if node.arg.startswith("_") and node.arg != "_":
                bad(node, f"names starting with '_' are not allowed ({node.arg!r})")
            elif node.arg == api_param and node not in a.args:
                bad(node, f"the API parameter {api_param!r} cannot be reassigned")
        elif isinstance(node, ast.keyword):
            if node.arg is not None and node.arg.startswith("_"):
                bad(node, f"names starting with '_' are not allowed (keyword {node.arg!r})")
        elif isinstance(node, ast.Attribute):
            on_api = isinstance(node.value, ast.Name) and node.value.id == api_param
            if node.attr.startswith("_"):
                bad(node, f"names starting with '_' are not allowed (attribute {node.attr!r})")
            elif not isinstance(node.ctx, ast.Load):
                bad(node, f"assigning to attributes is not allowed ({_snippet(node)})")
            elif on_api:
                if node.attr in methods:
                    api_uses.append((node.lineno, node.col_offset, node.attr))
                else:
                    bad(node, f"'{api_param}.{node.attr}' is not an API method "
                              f"(available: {', '.join(sorted(methods)) or 'none'})")
            elif node.attr not in DATA_METHODS:
                bad(node, f"attribute {node.attr!r} is not allowed (only API methods on {api_param!r} "
                          f"and plain-data methods such as append, get, split)")
    if problems:
        line, _col, rule = min(problems)
        raise fail(line, rule)

    api_calls: list[str] = []
    for _line, _col, attr in sorted(api_uses):
        if attr not in api_calls:
            api_calls.append(attr)
    spec = SkillSpec(name=name, params=params, api_param=api_param, docstring=ast.get_docstring(func) or "",
                     api_calls=api_calls)
    return _Checked(spec=spec, tree=tree, n_defaults=len(a.defaults))


def check_source(source: str, api_methods: Collection[str]) -> SkillSpec:
    """Parse and check skill source against every rule; raise SkillCodeError naming the rule and line."""
    return _check(source, api_methods).spec


# ------------------------------------------------------------------------------------------------- rewrites

def _call(func: str, args: list[ast.expr]) -> ast.Call:
    return ast.Call(func=ast.Name(id=func, ctx=ast.Load()), args=args, keywords=[])


class _GuardRewriter(ast.NodeTransformer):
    """Route size-amplifying operations through the guard functions injected as `_g_*` globals."""

    _BINOPS = {ast.Mult: "_g_mul", ast.Pow: "_g_pow", ast.LShift: "_g_lshift", ast.Add: "_g_add",
               ast.Mod: "_g_mod"}
    _AUGOPS = {ast.Mult: "_g_imul", ast.Pow: "_g_ipow", ast.LShift: "_g_ilshift", ast.Add: "_g_iadd",
               ast.Mod: "_g_imod"}

    def __init__(self, api_param: str) -> None:
        self.api_param = api_param
        self.temps = 0

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.returns = None  # annotations would be evaluated at def time, outside the budget
        for arg in node.args.args:
            arg.annotation = None
        return self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        guard = self._BINOPS.get(type(node.op))
        return node if guard is None else ast.copy_location(_call(guard, [node.left, node.right]), node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST | list[ast.stmt]:
        self.generic_visit(node)
        guard = self._AUGOPS.get(type(node.op))
        target = node.target
        if guard is None:
            return node
        if isinstance(target, ast.Name):  # x op= v  ->  x = _g_iop(x, v)  (keeps in-place semantics)
            value = _call(guard, [ast.Name(id=target.id, ctx=ast.Load()), node.value])
            return ast.copy_location(ast.Assign(targets=[ast.Name(id=target.id, ctx=ast.Store())], value=value), node)
        if isinstance(target, ast.Subscript):  # evaluate container and key once, as Python does
            self.temps += 1
            obj, key = f"_aug{self.temps}_obj", f"_aug{self.temps}_key"
            stmts: list[ast.stmt] = [
                ast.Assign(targets=[ast.Name(id=obj, ctx=ast.Store())], value=target.value),
                ast.Assign(targets=[ast.Name(id=key, ctx=ast.Store())], value=self._slice_expr(target.slice)),
                ast.Assign(
                    targets=[ast.Subscript(value=ast.Name(id=obj, ctx=ast.Load()),
                                           slice=ast.Name(id=key, ctx=ast.Load()), ctx=ast.Store())],
                    value=_call(guard, [ast.Subscript(value=ast.Name(id=obj, ctx=ast.Load()),
                                                      slice=ast.Name(id=key, ctx=ast.Load()), ctx=ast.Load()),
                                        node.value])),
            ]
            return [ast.copy_location(s, node) for s in stmts]
        return node  # attribute targets were rejected by the checker

    def _slice_expr(self, node: ast.expr) -> ast.expr:
        if isinstance(node, ast.Slice):
            parts = [p if p is not None else ast.Constant(value=None) for p in (node.lower, node.upper, node.step)]
            return ast.copy_location(_call("_g_slice", parts), node)
        if isinstance(node, ast.Tuple):
            return ast.copy_location(ast.Tuple(elts=[self._slice_expr(e) for e in node.elts], ctx=ast.Load()), node)
        return node

    def visit_While(self, node: ast.While) -> ast.AST:
        # `while True: pass` compiles to one self-jump that emits no line events; a tick call makes every
        # iteration count against the step budget whatever the body compiles to.
        self.generic_visit(node)
        node.body.insert(0, ast.copy_location(ast.Expr(value=_call("_g_tick", [])), node))
        return node

    def _display(self, node: ast.List | ast.Tuple) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.ctx, ast.Load) and any(isinstance(e, ast.Starred) for e in node.elts):
            return ast.copy_location(_call("_g_seq", [node]), node)
        return node

    def visit_List(self, node: ast.List) -> ast.AST:
        return self._display(node)

    def visit_Tuple(self, node: ast.Tuple) -> ast.AST:
        return self._display(node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        on_api = isinstance(node.value, ast.Name) and node.value.id == self.api_param
        if isinstance(node.ctx, ast.Load) and node.attr in _GROWTH_METHODS and not on_api:
            return ast.copy_location(_call("_g_method", [node.value, ast.Constant(value=node.attr)]), node)
        return node

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        self.generic_visit(node)
        spec = node.format_spec if node.format_spec is not None else ast.Constant(value=None)
        value = _call("_g_format", [node.value, ast.Constant(value=node.conversion), spec])
        return ast.copy_location(ast.FormattedValue(value=value, conversion=-1, format_spec=None), node)


# --------------------------------------------------------------------------------------------- plain data

class _TooLarge(Exception):
    """Internal: a value crossing the executor boundary has more items than allowed."""


def _plain(value: Any, limit: int, strict: bool, allow_sets: bool = True) -> Any:
    """A copy of `value` made of plain data only; non-plain parts raise TypeError (strict) or become repr strings."""
    left = [limit]

    def convert(v: Any, depth: int) -> Any:
        left[0] -= 1
        if left[0] < 0:
            raise _TooLarge
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return float(v)
        if isinstance(v, str):
            return str(v)
        if isinstance(v, bytes):
            return bytes(v)
        if depth >= _MAX_DEPTH:
            if strict:
                raise TypeError(f"plain data nested deeper than {_MAX_DEPTH} levels")
            return "<too deeply nested>"
        if isinstance(v, KeysView | ValuesView | ItemsView):
            v = list(v)
        if isinstance(v, list):
            return [convert(x, depth + 1) for x in v]
        if isinstance(v, tuple):
            return tuple(convert(x, depth + 1) for x in v)
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                key = convert(k, depth + 1)
                if isinstance(key, list | dict | set):
                    key = _short_repr(k)
                out[key] = convert(x, depth + 1)
            return out
        if allow_sets and isinstance(v, set | frozenset):
            items = [convert(x, depth + 1) for x in v]
            return frozenset(items) if isinstance(v, frozenset) else set(items)
        tolist = getattr(v, "tolist", None) if not strict else None  # numpy scalars / arrays from an API
        if callable(tolist):
            return convert(tolist(), depth)
        if strict:
            raise TypeError(f"expected plain data (None, bool, int, float, str, list, tuple, dict, set), "
                            f"got {type(v).__name__}")
        return _short_repr(v)

    return convert(value, 0)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 4, 80, 80, 80
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = 8


def _short_repr(v: Any) -> str:
    try:
        return _REPR.repr(v)
    except Exception:  # a repr that fails (e.g. an int over the str-conversion digit limit)
        return f"<{type(v).__name__}>"


def _exc_message(exc: BaseException) -> str:
    """A bounded one-line message for an exception raised by skill code."""
    args = getattr(exc, "args", ())
    if isinstance(exc, KeyError) and len(args) == 1:
        text = _short_repr(args[0])
    elif all(isinstance(a, str) for a in args):
        text = "; ".join(args)
    else:
        text = ", ".join(_short_repr(a) for a in args)
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


# ------------------------------------------------------------------------------------------------- guards

class _Guards:
    """Size checks run before an operation builds its result; the `_g_*` globals of compiled skill code."""

    def __init__(self, budget: Budget) -> None:
        self.max_sequence = budget.max_sequence
        self.max_text = 10 * budget.max_sequence  # items visited when turning a value into text
        self.tracer: _BudgetTracer | None = None  # set once the run's tracer exists

    def tick(self) -> None:
        """One `while` iteration (see _GuardRewriter.visit_While)."""
        if self.tracer is not None:
            self.tracer.count_line()

    # -- helpers
    def _seq_limit(self, what: str, n: int) -> None:
        if n > self.max_sequence:
            raise SkillAbort(f"memory budget: {what} would build {n} items (max_sequence {self.max_sequence})")

    @staticmethod
    def _int_limit(what: str, bits: float) -> None:
        if bits > MAX_INT_BITS:
            raise SkillAbort(f"memory budget: {what} would build an integer of about {bits:.3g} bits "
                             f"(limit {MAX_INT_BITS})")

    def text_cost(self, value: Any, what: str) -> None:
        """Abort if turning `value` into text would visit more than max_text items (shared references count)."""
        cost, stack = 0, [value]
        while stack:
            v = stack.pop()
            if isinstance(v, str | bytes):
                cost += len(v)
            elif isinstance(v, list | tuple | set | frozenset):
                cost += len(v) + 1
                stack.extend(v)
            elif isinstance(v, dict):
                cost += 2 * len(v) + 1
                stack.extend(v.keys())
                stack.extend(v.values())
            elif isinstance(v, int):
                cost += v.bit_length() // 3 + 1
            else:
                cost += 1
            if cost > self.max_text:
                raise SkillAbort(f"memory budget: {what} would produce more than {self.max_text} items of text")

    # -- binary operators
    def _mul_check(self, a: Any, b: Any) -> None:
        if isinstance(a, _SEQ_TYPES) and isinstance(b, int):
            self._seq_limit(f"{type(a).__name__} * {b}", len(a) * max(b, 0))
        elif isinstance(b, _SEQ_TYPES) and isinstance(a, int):
            self._seq_limit(f"{a} * {type(b).__name__}", len(b) * max(a, 0))
        elif isinstance(a, int) and isinstance(b, int):
            self._int_limit("int * int", a.bit_length() + b.bit_length())

    def _pow_check(self, a: Any, b: Any) -> None:
        if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
            self._int_limit(f"int ** {b}" if b < 10**12 else "int ** int", math.log2(abs(a)) * b)

    def _lshift_check(self, a: Any, b: Any) -> None:
        if isinstance(a, int) and isinstance(b, int) and a != 0 and b > 0:
            self._int_limit(f"int << {b}" if b < 10**12 else "int << int", a.bit_length() + b)

    def _add_check(self, a: Any, b: Any) -> None:
        if isinstance(a, _SEQ_TYPES) and isinstance(b, _SEQ_TYPES):
            self._seq_limit(f"{type(a).__name__} + {type(b).__name__}", len(a) + len(b))

    @staticmethod
    def _mod_check(a: Any, b: Any) -> None:
        if isinstance(a, str | bytes):
            raise SkillAbort("memory budget: '%' string formatting is not allowed in skill code (use an f-string)")

    def mul(self, a: Any, b: Any) -> Any:
        self._mul_check(a, b)
        return a * b

    def imul(self, a: Any, b: Any) -> Any:
        self._mul_check(a, b)
        return operator.imul(a, b)

    def pow(self, a: Any, b: Any) -> Any:
        self._pow_check(a, b)
        return a**b

    def ipow(self, a: Any, b: Any) -> Any:
        self._pow_check(a, b)
        return operator.ipow(a, b)

    def lshift(self, a: Any, b: Any) -> Any:
        self._lshift_check(a, b)
        return a << b

    def ilshift(self, a: Any, b: Any) -> Any:
        self._lshift_check(a, b)
        return operator.ilshift(a, b)

    def add(self, a: Any, b: Any) -> Any:
        self._add_check(a, b)
        return a + b

    def iadd(self, a: Any, b: Any) -> Any:
        self._add_check(a, b)
        return operator.iadd(a, b)

    def mod(self, a: Any, b: Any) -> Any:
        self._mod_check(a, b)
        return a % b

    def imod(self, a: Any, b: Any) -> Any:
        self._mod_check(a, b)
        return operator.imod(a, b)

    # -- displays, methods, formatting
    def seq(self, value: list | tuple) -> list | tuple:
        """Check a starred display ([*a, *b]) once built; it is at most a few times max_sequence."""
        self._seq_limit("a starred display", len(value))
        return value

    def method(self, obj: Any, name: str) -> Callable[..., Any]:
        """`obj.<name>` for a growth method, checking the result size before each call."""
        bound = getattr(obj, name)
        unbound = isinstance(obj, type)  # e.g. str.join(sep, items): the target is the first argument

        def call(*args: Any, **kwargs: Any) -> Any:
            target, rest = (args[0], args[1:]) if unbound and args else (obj, args)
            rest = self._method_check(name, target, rest, kwargs)
            return bound(*((target, *rest) if unbound and args else rest), **kwargs)

        return call

    def _method_check(self, name: str, target: Any, args: tuple, kwargs: dict[str, Any]) -> tuple:
        if name == "join" and isinstance(target, str | bytes) and len(args) == 1:
            items = list(args[0])
            size = len(target) * max(len(items) - 1, 0) + sum(len(i) for i in items if isinstance(i, str | bytes))
            self._seq_limit(f"{type(target).__name__}.join()", size)
            return (items,)
        if name == "replace" and isinstance(target, str | bytes) and len(args) >= 2:
            old, new = args[0], args[1]
            if isinstance(old, str | bytes) and isinstance(new, str | bytes):
                count = args[2] if len(args) > 2 else kwargs.get("count", -1)
                n = target.count(old) if old else len(target) + 1
                if isinstance(count, int) and count >= 0:
                    n = min(n, count)
                self._seq_limit(f"{type(target).__name__}.replace()", len(target) + n * max(len(new) - len(old), 0))
            return args
        if name in ("extend", "update", "union", "intersection", "difference") and isinstance(
                target, list | dict | set | frozenset):
            size = len(target) + sum(len(a) for a in args if isinstance(a, Collection)) + len(kwargs)
            self._seq_limit(f".{name}()", size)
        return args

    def format(self, value: Any, conversion: int, spec: str | None) -> str:
        """One f-string field: bounded text, no format width or precision beyond max_sequence."""
        self.text_cost(value, "an f-string field")
        if conversion == ord("s"):
            value = str(value)
        elif conversion == ord("r"):
            value = repr(value)
        elif conversion == ord("a"):
            value = ascii(value)
        if spec:
            for digits in re.findall(r"\d+", spec):
                self._seq_limit(f"format spec {spec!r}", int(digits) if len(digits) < 20 else 10**20)
        return format(value, spec or "")

    # -- builtins
    def range(self, *args: Any) -> range:
        r = range(*args)
        try:
            n = len(r)
        except OverflowError:
            n = sys.maxsize
        self._seq_limit(f"range({', '.join(str(a) for a in args)})", n)
        return r

    def sum(self, iterable: Any, /, start: Any = 0) -> Any:
        items = list(iterable)
        if isinstance(start, _SEQ_TYPES) or any(isinstance(i, _SEQ_TYPES) for i in items):
            size = sum(len(i) for i in [start, *items] if isinstance(i, _SEQ_TYPES))
            self._seq_limit("sum() of sequences", size)
        return sum(items, start)

    def round(self, number: Any, ndigits: Any = None) -> Any:
        if isinstance(number, int) and isinstance(ndigits, int) and ndigits < 0:
            self._int_limit("round(int, ndigits)", -ndigits * math.log2(10))
        return round(number) if ndigits is None else round(number, ndigits)

    def print(self, *args: Any, sep: str = " ", end: str = "\n") -> None:
        if logger.isEnabledFor(logging.DEBUG):
            for a in args:
                self.text_cost(a, "print()")
            logger.debug("skill print: %s", str(sep).join(str(a) for a in args))

    def str_type(self) -> type:
        """A `str` whose calls check the text cost first; str.lower etc. still work as unbound methods."""
        guards = self

        class _GuardedStrMeta(type):
            def __call__(cls, *args: Any, **kwargs: Any) -> str:
                if args:
                    guards.text_cost(args[0], "str()")
                return str(*args, **kwargs)

        return _GuardedStrMeta("str", (str,), {"__slots__": ()})

    def builtins(self) -> dict[str, Any]:
        """The only builtins skill code sees (its `__builtins__`)."""
        import builtins as real

        table = {n: getattr(real, n) for n in SAFE_BUILTINS}
        table.update(range=self.range, sum=self.sum, round=self.round, print=self.print, str=self.str_type())
        return table

    def globals(self) -> dict[str, Any]:
        """The skill module's globals: restricted builtins plus the `_g_*` guards (unreachable to skill code)."""
        return {
            "__builtins__": self.builtins(), "__name__": "skill",
            "_g_mul": self.mul, "_g_imul": self.imul, "_g_pow": self.pow, "_g_ipow": self.ipow,
            "_g_lshift": self.lshift, "_g_ilshift": self.ilshift, "_g_add": self.add, "_g_iadd": self.iadd,
            "_g_mod": self.mod, "_g_imod": self.imod, "_g_seq": self.seq, "_g_method": self.method,
            "_g_format": self.format, "_g_slice": slice, "_g_tick": self.tick,
        }


# ------------------------------------------------------------------------------------------------- tracer

class _ResidentMemory:
    """Reads this process's resident set size in bytes (/proc/self/statm; peak RSS where that is absent)."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.page = 4096
        try:
            self.fd = os.open("/proc/self/statm", os.O_RDONLY)
            self.page = os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, AttributeError):
            self.fd = None

    def read(self) -> int | None:
        if self.fd is not None:
            try:
                return int(os.pread(self.fd, 128, 0).split()[1]) * self.page
            except (OSError, ValueError, IndexError):
                return None
        try:
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        except (ImportError, OSError, ValueError):
            return None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _BudgetTracer:
    """sys.settrace hook: counts line events in skill frames and checks time and memory every few lines."""

    def __init__(self, filename: str, budget: Budget) -> None:
        self.filename = filename
        self.budget = budget
        self.lines = 0
        self.next_check = _CHECK_EVERY
        self.memory = _ResidentMemory()
        self.rss0 = self.memory.read()
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def check(self) -> None:
        """Raise SkillAbort if the wall-time or memory budget is spent."""
        if self.elapsed() > self.budget.max_seconds:
            raise SkillAbort(f"time budget exceeded ({self.budget.max_seconds:g} s)")
        if self.rss0 is not None:
            rss = self.memory.read()
            if rss is not None and rss - self.rss0 > self.budget.max_memory_mb * 1024 * 1024:
                raise SkillAbort(f"memory budget exceeded ({self.budget.max_memory_mb:g} MB)")

    def global_trace(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        # Only skill frames (the function, its lambdas and comprehensions) get the line counter.
        return self.local_trace if frame.f_code.co_filename == self.filename else None

    def count_line(self) -> None:
        """One more line of skill code (or one `while` iteration); check the budget."""
        self.lines += 1
        if self.lines > self.budget.max_lines:
            raise SkillAbort(f"step budget exceeded ({self.budget.max_lines} lines)")
        if self.lines >= self.next_check:
            self.next_check += _CHECK_EVERY
            self.check()

    def local_trace(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        if event == "line":
            self.count_line()
        return self.local_trace

    def close(self) -> None:
        self.memory.close()


# -------------------------------------------------------------------------------------------------- proxy

def _proxy_repr(self: object) -> str:
    return "<skill API>"


def _make_proxy(api: object, methods: frozenset[str], tracer: _BudgetTracer, limit: int) -> object:
    """An object with only `methods`, each copying plain data in and out and checking the budget around the call."""
    cls = type("SkillAPI", (), {"__slots__": tuple(sorted(methods)), "__repr__": _proxy_repr})
    proxy = cls()

    def wrap(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            tracer.check()
            try:
                args = _plain(args, limit, strict=True)
                kwargs = _plain(kwargs, limit, strict=True)
            except TypeError as exc:
                raise TypeError(f"API method {name}(): {exc}") from None
            except _TooLarge:
                raise SkillAbort(f"memory budget: arguments to API method {name}() are too large") from None
            result = method(*args, **kwargs)
            tracer.check()
            try:
                return _plain(result, limit, strict=False)
            except _TooLarge:
                raise SkillAbort(f"memory budget: result of API method {name}() is too large") from None

        call.__name__ = call.__qualname__ = name
        return call

    for m in sorted(methods):
        setattr(proxy, m, wrap(m, getattr(api, m)))
    return proxy


# -------------------------------------------------------------------------------------------------- run

def _bind_args(checked: _Checked, args: Mapping[str, Any] | Sequence[Any]) -> tuple[tuple, dict[str, Any]]:
    """Positional and keyword arguments for the skill (after the API), or SkillCodeError naming the mismatch."""
    spec = checked.spec
    required = spec.params[: len(spec.params) - checked.n_defaults]
    signature = f"{spec.name}({', '.join([spec.api_param, *spec.params])})"
    if isinstance(args, Mapping):
        keys = list(args)
        extra = [k for k in keys if k not in spec.params]
        missing = [p for p in required if p not in args]
        if extra:
            raise SkillCodeError(f"skill '{spec.name}': unexpected argument(s) {', '.join(map(repr, extra))} "
                                 f"for {signature}")
        if missing:
            raise SkillCodeError(f"skill '{spec.name}': missing argument(s) {', '.join(map(repr, missing))} "
                                 f"for {signature}")
        positional, named = (), dict(args)
    elif isinstance(args, Sequence) and not isinstance(args, str | bytes):
        if not len(required) <= len(args) <= len(spec.params):
            raise SkillCodeError(f"skill '{spec.name}': {signature} takes {len(required)}"
                                 f"{'' if checked.n_defaults == 0 else f'-{len(spec.params)}'} argument(s) "
                                 f"after the API, got {len(args)}: {list(args)!r}"[:400])
        positional, named = tuple(args), {}
    else:
        raise SkillCodeError(f"skill '{spec.name}': arguments must be a mapping or a sequence, "
                             f"got {type(args).__name__}")
    try:
        return _plain(positional, 10**6, strict=True), _plain(named, 10**6, strict=True)
    except (TypeError, _TooLarge) as exc:
        raise SkillCodeError(f"skill '{spec.name}': arguments must be plain data ({exc or 'too large'})") from None


def _compile(checked: _Checked, guards: _Guards, filename: str) -> Callable[..., Any]:
    """Rewrite the checked tree with guards, compile it under `filename` and return the function."""
    try:
        tree = _GuardRewriter(checked.spec.api_param).visit(checked.tree)
        ast.fix_missing_locations(tree)
        code = compile(tree, filename, "exec", dont_inherit=True)
    except (RecursionError, MemoryError, SyntaxError, ValueError) as exc:
        raise SkillCodeError(f"skill '{checked.spec.name}': cannot be compiled ({type(exc).__name__}: {exc})") from None
    namespace = guards.globals()
    exec(code, namespace)  # checked, rewritten code: defines the one function and runs nothing else
    return namespace[checked.spec.name]


def _skill_line(exc: BaseException, filename: str) -> int | None:
    """The innermost line of skill code in the exception's traceback."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def run_skill(source: str, api: object, args: Mapping[str, Any] | Sequence[Any], api_methods: Collection[str],
              budget: Budget = DEFAULT_BUDGET) -> ExecResult:
    """check_source, compile, then call the function with a proxy of `api` exposing only `api_methods`; never raises for
    rule breaks at run time or SkillAbort: returns ExecResult(False, reason)."""
    methods = _validate_methods(api_methods)
    checked = _check(source, methods)
    positional, named = _bind_args(checked, args)
    name = checked.spec.name
    filename = f"<skill:{name}>"
    guards = _Guards(budget)
    func = _compile(checked, guards, filename)
    if not all(callable(getattr(api, m, None)) for m in methods):
        missing = sorted(m for m in methods if not callable(getattr(api, m, None)))
        raise EmbodiedError(f"api_methods names {', '.join(missing)}, which {type(api).__name__} does not provide")
    tracer = _BudgetTracer(filename, budget)
    guards.tracer = tracer
    proxy = _make_proxy(api, methods, tracer, 10 * budget.max_sequence)
    try:
        previous = sys.gettrace()
        sys.settrace(tracer.global_trace)
        try:
            value = func(proxy, *positional, **named)
        finally:
            sys.settrace(previous)
        try:
            value = _plain(value, 10 * budget.max_sequence, strict=False, allow_sets=False)
        except _TooLarge:
            raise SkillAbort(f"memory budget: return value has more than {10 * budget.max_sequence} items") from None
    except SkillAbort as abort:
        logger.info("skill '%s' stopped: %s", name, abort.reason)
        return ExecResult(False, abort.reason, lines=tracer.lines, seconds=tracer.elapsed())
    except Exception as exc:  # anything the skill's code raised (TypeError, KeyError, ...) is a failed run
        line = _skill_line(exc, filename)
        message = _exc_message(exc)
        reason = f"skill raised {type(exc).__name__}" + (f": {message}" if message else "")
        reason += f" (line {line})" if line is not None else ""
        logger.info("skill '%s' failed: %s", name, reason)
        return ExecResult(False, reason, lines=tracer.lines, seconds=tracer.elapsed())
    finally:
        tracer.close()
    logger.debug("skill '%s' finished: %d lines, %.3f s", name, tracer.lines, tracer.elapsed())
    return ExecResult(True, "", value=value, lines=tracer.lines, seconds=tracer.elapsed())
