"""clusterctl's substitution language, case by case as drone/envsubst evaluates it."""

from __future__ import annotations

import pytest

from shipyard.templates import envsubst
from shipyard.templates.envsubst import MissingVariables, TemplateSyntaxError, Variable

VALUES = {"NAME": "shipyard", "EMPTY": "", "PATH_LIKE": "a/b/c.tar.gz", "N": "3"}


def sub(text: str, **extra: str) -> str:
    values = {**VALUES, **extra}
    return envsubst.substitute(text, values.get)


@pytest.mark.parametrize(("text", "want"), [
    ("plain text", "plain text"),
    ("${NAME}", "shipyard"),
    ("pre-${NAME}-post", "pre-shipyard-post"),
    ("$NAME stays", "$NAME stays"),                     # only ${...} is an expression
    ("$${NAME}", "${NAME}"),                            # $$ escapes
    ("cost: $$5", "cost: $5"),
    ("${ NAME }", "shipyard"), ("${ NAME}", "shipyard"), ("${NAME }", "shipyard"),
    ("${UNSET:=dflt}", "dflt"), ("${EMPTY:=dflt}", "dflt"), ("${NAME:=dflt}", "shipyard"),
    ("${UNSET=dflt}", "dflt"), ("${UNSET:-dflt}", "dflt"),
    ("${UNSET:=${NAME}-x}", "shipyard-x"),             # nested default
    ("${NAME:+set}", "set"), ("${EMPTY:+set}", ""),
    ("${#NAME}", "8"),
    ("${NAME^}", "Shipyard"), ("${NAME^^}", "SHIPYARD"),
    ("${UP,}", "up"), ("${UPPER,}", "uPPER"), ("${UP,,}", "up"),
    ("${NAME:4}", "yard"), ("${NAME:0:4}", "ship"), ("${NAME:-4}", "shipyard"),
    ("${NAME:x}", "shipyard"), ("${NAME:4:99}", "yard"),
    ("${PATH_LIKE#*/}", "b/c.tar.gz"), ("${PATH_LIKE##*/}", "c.tar.gz"),
    ("${PATH_LIKE%.*}", "a/b/c.tar"), ("${PATH_LIKE%%.*}", "a/b/c"),
    ("${PATH_LIKE/\\//_}", "a_b/c.tar.gz"), ("${PATH_LIKE//\\//_}", "a_b_c.tar.gz"),
    ("${PATH_LIKE/#a/z}", "z/b/c.tar.gz"), ("${PATH_LIKE/%gz/xz}", "a/b/c.tar.xz"),
    ("${A-b}", "dash is part of the name"),
])
def test_expressions(text: str, want: str) -> None:
    assert sub(text, UP="Up", UPPER="UPPER", **{"A-b": "dash is part of the name"}) == want


def test_missing_variables_are_all_named_before_anything_is_substituted() -> None:
    with pytest.raises(MissingVariables) as e:
        sub("${B} ${A} ${NAME} ${A} ${C:=ok}")
    assert e.value.names == ["A", "B"]
    assert str(e.value) == (
        "value for variables [A, B] is not set. Please set the value using os environment "
        "variables or the clusterctl config file")


def test_required_error_operator() -> None:
    with pytest.raises(MissingVariables):
        sub("${EMPTY:?must be set}")
    assert sub("${NAME:?must be set}") == "shipyard"


def test_variables_report_defaults_and_requirement() -> None:
    found = envsubst.variables(
        "${B}\n${A:=1}\n${C:=${B}-x}\n${D^^}\n${A}\n${ E }\n$$F\n")
    assert found == [Variable("A", False, "1"), Variable("B", True),
                     Variable("C", False, "${B}-x"), Variable("D", False),
                     Variable("E", True)]


def test_unterminated_expression_is_a_syntax_error() -> None:
    with pytest.raises(TemplateSyntaxError, match="unterminated"):
        sub("name: ${NAME")
