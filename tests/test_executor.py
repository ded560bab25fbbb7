"""The restricted skill executor: legit skills run, every escape attempt is contained with a precise reason."""

from __future__ import annotations

import logging
import re
import sys
import time

import pytest

from embodied.library.executor import (
    Budget,
    ExecResult,
    SkillAbort,
    SkillCodeError,
    SkillSpec,
    check_source,
    run_skill,
)
from embodied.world.errors import EmbodiedError

METHODS = ("pick_and_place", "on", "blocks")


class FakeAPI:
    """A three-block table: records every call; pick_and_place of a block in `fail` raises SkillAbort."""

    def __init__(self, fail: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple] = []
        self.support = {"red": "table", "green": "table", "blue": "table"}
        self.fail = set(fail)
        self.robot = object()  # attributes the skill must not reach
        self.secret = ["internal"]

    def pick_and_place(self, block: str, target: str) -> bool:
        self.calls.append(("pick_and_place", block, target))
        if block in self.fail:
            raise SkillAbort("missed grasp")
        self.support[block] = target
        return True

    def on(self, block: str) -> str:
        self.calls.append(("on", block))
        return self.support[block]

    def blocks(self) -> list[str]:
        self.calls.append(("blocks",))
        return self.secret  # deliberately the internal list: the proxy must hand out a copy

    def reset(self) -> None:
        self.calls.append(("reset",))


BUILD_TOWER = '''
def build_tower(api, bottom, middle, top):
    """Stack middle on bottom, then top on middle."""
    for lower, upper in zip([bottom, middle], [middle, top]):
        if api.on(upper) != lower:
            api.pick_and_place(upper, lower)
    moved = [b for b in (middle, top) if api.on(b) != "table"]
    moved.append(bottom)
    moved.sort()
    return f"{top} on {api.on(top)}", moved
'''


def skill(body: str, params: str = "") -> str:
    """A one-function skill source with `body` (lines joined with newlines) indented under the def."""
    lines = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return f"def probe(api{', ' + params if params else ''}):\n{lines}\n"


def run(source: str, api: FakeAPI | None = None, args=(), budget: Budget | None = None) -> ExecResult:
    """run_skill on a FakeAPI, checking the trace function is restored afterwards."""
    before = sys.gettrace()
    result = run_skill(source, api if api is not None else FakeAPI(), args, METHODS, budget or Budget())
    assert sys.gettrace() is before
    return result


# ---------------------------------------------------------------------------------------------- legit skills

def test_build_tower_runs_and_calls_the_api_by_name_and_by_position() -> None:
    for args in ({"bottom": "red", "middle": "green", "top": "blue"}, ["red", "green", "blue"]):
        api = FakeAPI()
        result = run(BUILD_TOWER, api, args)
        assert result.success and result.reason == ""
        assert result.value == ("blue on green", ["blue", "green", "red"])
        moves = [c for c in api.calls if c[0] == "pick_and_place"]
        assert moves == [("pick_and_place", "green", "red"), ("pick_and_place", "blue", "green")]
        assert result.lines > 0 and result.seconds >= 0


def test_check_source_reports_the_spec() -> None:
    spec = check_source(BUILD_TOWER, METHODS)
    assert spec == SkillSpec(name="build_tower", params=["bottom", "middle", "top"], api_param="api",
                             docstring="Stack middle on bottom, then top on middle.",
                             api_calls=["on", "pick_and_place"])


def test_plain_data_methods_lambdas_and_guarded_operators_work() -> None:
    src = skill('''
names = sorted(api.blocks() + ["Zed"], key=str.lower)
total = 0
while total < 5:
    total += 2
counts = {"a": [1]}
counts["a"] += [2, 3]
counts["a"] *= 2
text = ", ".join(n.upper() for n in names)
big = 2 ** 64 << 2
return {"names": names, "total": total, "counts": counts, "text": text.replace("ZED", "z"),
        "big": big, "pad": f"{total:>4}|{'x' * 3!r}", "last": (lambda xs: xs[-1])(names)}
''')
    result = run(src)
    assert result.success, result.reason
    assert result.value == {"names": ["internal", "Zed"], "total": 6, "counts": {"a": [1, 2, 3, 1, 2, 3]},
                            "text": "INTERNAL, z", "big": 2**66, "pad": "   6|'xxx'", "last": "Zed"}


def test_api_results_are_copies_and_return_values_are_plain() -> None:
    api = FakeAPI()
    result = run(skill('''
inner = api.blocks()
inner.append("hacked")
return [inner, range(3), {1, 2}, api, api.on]
'''), api)
    assert result.success
    assert api.secret == ["internal"]  # the skill mutated its copy, not the API's list
    assert result.value[0] == ["internal", "hacked"]
    assert all(isinstance(v, str) for v in result.value[1:])  # non-plain values become their repr


@pytest.mark.parametrize(("args", "match"), [
    ({"bottom": "red", "middle": "green"}, "missing argument.*'top'"),
    ({"bottom": "red", "middle": "green", "top": "blue", "extra": "x"}, "unexpected argument.*'extra'"),
    (["red", "green"], r"takes 3 argument\(s\).*got 2"),
    ("red green blue", "mapping or a sequence"),
    ({"bottom": "red", "middle": "green", "top": object()}, "plain data"),
])
def test_bad_arguments_are_named(args, match: str) -> None:
    api = FakeAPI()
    with pytest.raises(SkillCodeError, match=match):
        run_skill(BUILD_TOWER, api, args, METHODS)
    assert api.calls == []


def test_failing_primitive_aborts_with_its_reason() -> None:
    api = FakeAPI(fail=("green",))
    result = run(BUILD_TOWER, api, ["red", "green", "blue"])
    assert result == ExecResult(False, "missed grasp", lines=result.lines, seconds=result.seconds)
    assert ("pick_and_place", "blue", "green") not in api.calls  # nothing ran after the abort


def test_runtime_errors_name_the_exception_and_the_skill_line() -> None:
    result = run(skill('''
x = 1
y = 0
return x / y
'''))
    assert not result.success
    assert result.reason == "skill raised ZeroDivisionError: division by zero (line 4)"
    result = run(skill('x = {}\nreturn x["missing"]'))
    assert result.reason == "skill raised KeyError: 'missing' (line 3)"
    result = run(skill('return api.on("purple")'))  # an API bug surfaces at the calling line
    assert result.reason == "skill raised KeyError: 'purple' (line 2)"
    result = run(skill('return api.pick_and_place(lambda: 0, "red")'))  # only plain data goes to the API
    assert result.reason.startswith("skill raised TypeError: API method pick_and_place(): expected plain data")


def test_keyboard_interrupt_is_not_swallowed() -> None:
    class Interrupting(FakeAPI):
        def on(self, block: str) -> str:
            raise KeyboardInterrupt

    before = sys.gettrace()
    with pytest.raises(KeyboardInterrupt):
        run_skill(skill('return api.on("red")'), Interrupting(), [], METHODS)
    assert sys.gettrace() is before


def test_budget_and_api_methods_are_validated() -> None:
    with pytest.raises(EmbodiedError, match="max_lines.*-1"):
        Budget(max_lines=-1)
    with pytest.raises(EmbodiedError, match="max_seconds.*0"):
        Budget(max_seconds=0)
    with pytest.raises(EmbodiedError, match="'__class__'"):
        check_source(BUILD_TOWER, ["on", "__class__"])
    with pytest.raises(EmbodiedError, match="fly.*does not provide"):
        run_skill(BUILD_TOWER, FakeAPI(), ["red", "green", "blue"], [*METHODS, "fly"])


# ------------------------------------------------------------------------------------ static escape attempts

STATIC_ESCAPES = [
    ("import os", r"imports are not allowed \(import os\)"),
    ("from os import path", r"imports are not allowed \(from os import path\)"),
    ("__import__('os')", r"name '__import__' is not available in skill code \(names starting with '_'"),
    ("open('/etc/passwd')", "name 'open' is not available in skill code"),
    ("eval('1')", "name 'eval' is not available"),
    ("exec('x=1')", "name 'exec' is not available"),
    ("compile('1', 'f', 'eval')", "name 'compile' is not available"),
    ("getattr(api, 'pick' + '_and_place')", "name 'getattr' is not available"),
    ("().__class__.__bases__[0].__subclasses__()", "names starting with '_' are not allowed"),
    ("api.pick_and_place.__globals__", "names starting with '_' are not allowed.*'__globals__'"),
    ("'{0.__class__}'.format(1)", "attribute 'format' is not allowed"),
    ("'{0.x}'.format_map({})", "attribute 'format_map' is not allowed"),
    ("f'{api.__class__}'", "names starting with '_' are not allowed.*'__class__'"),
    ("globals()", "name 'globals' is not available"),
    ("vars()", "name 'vars' is not available"),
    ("type(api)", "name 'type' is not available"),
    ("isinstance(api, object)", "name 'isinstance' is not available"),
    ("__builtins__", "name '__builtins__' is not available"),
    ("f = lambda: (yield)", r"yield is not allowed"),
    ("try:\n    api.pick_and_place('red', 'blue')\nexcept BaseException:\n    pass", r"try/except is not allowed \(try:\); failures must reach the executor"),
    ("class Evil:\n    pass", r"class definitions are not allowed \(class Evil"),
    ("def helper():\n    pass", "nested function definitions are not allowed"),
    ("global x", "global declarations are not allowed"),
    ("with api as a:\n    pass", "with statements are not allowed"),
    ("raise ValueError('x')", "raise is not allowed"),
    ("x = 1\ndel x", r"del is not allowed \(del x\)"),
    ("api.robot", r"'api.robot' is not an API method"),
    ("api.reset()", r"'api.reset' is not an API method"),
    ("api.secret.append('x')", r"'api.secret' is not an API method"),
    ("api.x = 1", r"assigning to attributes is not allowed \(api.x\)"),
    ("a = api\na.reset()", "attribute 'reset' is not allowed"),
    ("api = 1", "the API parameter 'api' cannot be reassigned"),
    ("f = [api.on for api in [1]]", "the API parameter 'api' cannot be reassigned"),
    ("_x = 1", "names starting with '_' are not allowed"),
    ("sorted([1], _key=1)", "names starting with '_' are not allowed"),
    ("(lambda _y: _y)(1)", "names starting with '_' are not allowed"),
    ("_g_mul([0], 10 ** 9)", "name '_g_mul' is not available"),
    ("x = 'a'.center(10 ** 9)", "attribute 'center' is not allowed"),
    ("match 1:\n    case 1:\n        pass", "match statements are not allowed"),
]


@pytest.mark.parametrize(("body", "match"), STATIC_ESCAPES, ids=[b.splitlines()[0] for b, _ in STATIC_ESCAPES])
def test_static_escapes_are_rejected_before_running(body: str, match: str) -> None:
    api = FakeAPI()
    before = sys.gettrace()
    with pytest.raises(SkillCodeError) as info:
        run_skill(skill(body), api, [], METHODS)
    assert re.match(r"skill 'probe', line \d+: ", str(info.value)), str(info.value)
    assert re.search(match, str(info.value)), str(info.value)
    with pytest.raises(SkillCodeError, match=match):
        check_source(skill(body), METHODS)
    assert api.calls == []
    assert sys.gettrace() is before


@pytest.mark.parametrize(("source", "match"), [
    ("import os\ndef f(api):\n    return 1\n", r"skill 'f', line 1: imports are not allowed \(import os\)"),
    ("def f(api):\n    return 1\nf(None)\n", "exactly one function definition"),
    ("async def f(api):\n    return 1\n", "plain def, not async"),
    ("@staticmethod\ndef f(api):\n    return 1\n", "decorators are not allowed"),
    ("def f(api, *rest):\n    return 1\n", r"\*args/\*\*kwargs are not allowed"),
    ("def f(api, x=[]):\n    return 1\n", "default values must be constants.*'x'"),
    ("def f():\n    return 1\n", "at least one parameter"),
    ("def f(api):\n    return (\n", "syntax error"),
    ("", "empty"),
])
def test_structure_rules(source: str, match: str) -> None:
    with pytest.raises(SkillCodeError, match=match):
        check_source(source, METHODS)


# ------------------------------------------------------------------------------------ runtime containment

RUNTIME_ESCAPES = [
    ("while True:\n    pass", Budget(max_lines=10_000), "step budget exceeded (10000 lines)"),
    ("while True: pass", Budget(max_lines=10_000), "step budget exceeded (10000 lines)"),
    ("x = 0\nwhile True:\n    x += 1", Budget(max_seconds=0.2, max_lines=10**9), "time budget exceeded (0.2 s)"),
    ("x = [0] * 10**9", Budget(), "memory budget: list * 1000000000 would build 1000000000 items"),
    ("x = 'a' * 10**10", Budget(), "memory budget: str * 10000000000"),
    ("x = 10 ** 10 ** 8", Budget(), "memory budget: int ** 100000000 would build an integer"),
    ("x = list(range(10**9))", Budget(), "memory budget: range(1000000000)"),
    ("x = 1 << 10**9", Budget(), "memory budget: int << 1000000000"),
    ("x = 2 ** 60000\nx = x * x", Budget(), "memory budget: int * int"),
    ("x = round(5, -10**8)", Budget(), "memory budget: round(int, ndigits)"),
    ("x = [1] * 100000\nx.extend(x)", Budget(), "memory budget: .extend() would build 200000 items"),
    ("x = [1] * 100000\nx += x", Budget(), "memory budget: list + list would build 200000 items"),
    ("x = [1]\nfor i in range(40):\n    x = [*x, *x]", Budget(), "memory budget: a starred display"),
    ("x = 'a' * 60000\nx = ','.join([x, x])", Budget(), "memory budget: str.join()"),
    ("x = 'a' * 60000\nx = str.join(',', [x, x])", Budget(), "memory budget: str.join()"),
    ("x = ('a' * 1000).replace('', 'b' * 1000)", Budget(), "memory budget: str.replace()"),
    ("x = [[1] * 1000] * 1000\nx = sum(x, [])", Budget(), "memory budget: sum() of sequences"),
    ("x = f'{1:>1000000000}'", Budget(), "memory budget: format spec '>1000000000'"),
    ("n = 10 ** 9\nx = f'{1:>{n}}'", Budget(), "memory budget: format spec"),
    ("x = '%0999999999d' % 1", Budget(), "memory budget: '%' string formatting is not allowed"),
    ("x = [1] * 1000\nx = str([x] * 10000)", Budget(max_sequence=10_000), "memory budget: str() would produce"),
    ("x = [1] * 1000\nx = f'{[x] * 10000}'", Budget(max_sequence=10_000), "memory budget: an f-string field"),
    ("x = [1] * 1000\nreturn [x] * 10000", Budget(max_sequence=10_000), "memory budget: return value has more"),
    ("f = lambda: f()\nf()", Budget(), "skill raised RecursionError"),
]


@pytest.mark.parametrize(("body", "budget", "match"), RUNTIME_ESCAPES,
                         ids=[b.replace("\n", "; ")[:40] for b, _, _ in RUNTIME_ESCAPES])
def test_runtime_escapes_are_contained(body: str, budget: Budget, match: str) -> None:
    api = FakeAPI()
    result = run(skill(body), api, [], budget)
    assert not result.success
    assert match in result.reason, result.reason
    assert api.calls == []


def test_nested_comprehension_growth_hits_a_budget() -> None:
    result = run(skill("x = [[0] * 1000 for i in range(100000)]"), budget=Budget(max_memory_mb=64, max_lines=50_000))
    assert result.reason in ("memory budget exceeded (64 MB)", "step budget exceeded (50000 lines)")
    assert result.lines <= 50_001


def test_runtime_builtins_are_only_the_allowed_ones() -> None:
    # Defence in depth: even names that slipped past the checker would not resolve at run time.
    from embodied.library.executor import SAFE_BUILTINS, _Guards

    table = _Guards(Budget()).builtins()
    assert set(table) == set(SAFE_BUILTINS)
    assert not {"open", "eval", "exec", "__import__", "getattr", "type"} & set(table)


def test_aborts_inside_lambdas_and_comprehensions_stop_the_skill() -> None:
    api = FakeAPI(fail=("red",))
    result = run(skill('done = [api.pick_and_place(b, "table") for b in ["green", "red", "blue"]]\nreturn done'), api)
    assert result.reason == "missed grasp"
    assert [c[1] for c in api.calls] == ["green", "red"]


def test_static_violations_name_the_line() -> None:
    with pytest.raises(SkillCodeError, match=r"^skill 'probe', line 4: imports are not allowed \(import os\)$"):
        check_source(skill("x = 1\ny = 2\nimport os"), METHODS)
    with pytest.raises(SkillCodeError, match=r"^skill 'probe', line 3: try/except is not allowed"):
        check_source(skill("x = 1\ntry:\n    x = 2\nexcept Exception:\n    x = 3"), METHODS)


def test_time_budget_is_checked_around_api_calls() -> None:
    class Slow(FakeAPI):
        def on(self, block: str) -> str:
            time.sleep(0.05)
            return super().on(block)

    api = Slow()
    result = run(skill('while True:\n    api.on("red")'), api, budget=Budget(max_seconds=0.12, max_lines=10**9))
    assert result.reason == "time budget exceeded (0.12 s)"
    assert 2 <= len(api.calls) <= 4  # stopped at the first API call after the deadline, long before 100 lines


def test_print_goes_to_the_log_and_underscore_alone_is_a_name(caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG, logger="embodied.library.executor")
    result = run(skill('n = 0\nfor _ in range(3):\n    n += 1\nprint("stacked", n)\nreturn n'))
    assert result.success and result.value == 3
    assert "skill print: stacked 3" in caplog.text
    assert capsys.readouterr().out == ""
