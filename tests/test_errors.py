"""The error tree: one definition per name, one code per leaf, policy in attributes."""

import ast
from pathlib import Path

import bcai.errors as errors


def test_every_error_class_is_defined_once():
    tree = ast.parse(Path(errors.__file__).read_text())
    names = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})


def test_every_error_has_its_own_code_and_sane_policy():
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.BcaiError)]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)), sorted({c for c in codes if codes.count(c) > 1})
    for cls in classes:
        assert 400 <= cls.http_status <= 599, cls
        assert isinstance(cls.exit_code, int) and cls.exit_code >= 1, cls
        assert cls.__doc__, f"{cls.__name__} needs a 'Raised when ...' docstring"
