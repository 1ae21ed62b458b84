"""Protections the course adds to ``nbgrader autograde`` (loaded by nbgrader_config.py).

nbgrader puts back every locked cell (instructor text, setup and test cells) from the
gradebook, adds the hidden tests only at grading time, interrupts a cell after
``Execute.timeout`` seconds, and counts a test cell that raised even when the student
silenced IPython's tracebacks. But it runs the student's cells unchecked, in the same
Python process as the tests, so a student cell can:

- patch what the tests rely on (``np.testing.assert_allclose = ...``, ``builtins``) or
  set an answer to an object whose ``==`` is always true;
- reach IPython itself (``get_ipython().input_transformers_cleanup``) and blank every
  test cell that follows: full marks for nothing;
- read the hidden tests in ``source/`` or the gradebook, from the disk;
- exit the kernel (``os._exit``: the submission fails to grade) or take the memory.

And nbgrader 0.9.6 cannot grade a notebook where a test cell was pasted twice (it stops
the whole run), a cell has forged nbgrader metadata, or a deleted test cell followed a
read-only cell. Three classes here close those holes:

:class:`RestoreCells`
    nbgrader's ``OverwriteCells``, without those crashes: it drops nbgrader metadata
    that the gradebook does not know and puts deleted test cells back.
:class:`GuardUntrustedCells`
    runs after it. Every code cell that is not a locked cell of the gradebook, unchanged,
    is untrusted (answer cells and cells the student added), and is checked against a
    small allow-list: imports of NumPy, Keras, ``math`` and ``course_utils`` only; no
    ``exec``/``eval``/``open``/``getattr``/``get_ipython`` and the like, no names with
    double underscores, no private attributes, no attribute assignment, no classes, no
    ``global``; no module-level rebinding of a builtin or of a name the tests read from
    the setup cells; no file or system access through the allowed modules. A cell that
    breaks a rule is not run: its code is replaced by a ``raise`` naming the rule, so
    the tests that need it fail, and only those.
:class:`LimitedExecute`
    starts each grading kernel under ``setrlimit`` limits on allocated memory
    (``RLIMIT_DATA``: heap and private mappings, not the address space TensorFlow
    reserves) and file size, so a huge allocation raises ``MemoryError`` instead of
    starving the grader.

None of this is a sandbox: the kernel runs as the grader's user. Grade untrusted work in
a container that cannot read ``source/`` or the gradebook when the stakes are high.
"""

from __future__ import annotations

import ast
import builtins
import os
import sys
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.api import Gradebook
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, OverwriteCells
from traitlets import Integer, Unicode

ALLOWED_MODULES = ("numpy", "keras", "math", "course_utils")
"""The only modules an answer cell may import (and submodules of them)."""

FORBIDDEN_NAMES = frozenset(
    {
        "__import__",
        "breakpoint",
        "classmethod",
        "compile",
        "delattr",
        "dir",
        "eval",
        "exec",
        "exit",
        "get_ipython",
        "getattr",
        "globals",
        "help",
        "input",
        "locals",
        "memoryview",
        "object",
        "open",
        "property",
        "quit",
        "setattr",
        "staticmethod",
        "super",
        "type",
        "vars",
    }
)
"""Builtins that reach the interpreter, the namespace or the disk."""

FORBIDDEN_ATTRIBUTES = frozenset(
    {
        # file and network access through NumPy, Keras or course_utils
        "DataSource",
        "Path",
        "dump",
        "dumps",
        "fromfile",
        "fromregex",
        "genfromtxt",
        "get_file",
        "load",
        "load_model",
        "load_weights",
        "loadtxt",
        "memmap",
        "save",
        "save_weights",
        "savetxt",
        "savez",
        "savez_compressed",
        "tofile",
        # modules that the allowed modules happen to import
        "core",
        "ctypes",
        "ctypeslib",
        "f2py",
        "hashlib",
        "lib",
        "os",
        "src",
        "sys",
        "warnings",
        "zipfile",
    }
)
"""Attributes of the allowed modules that read or write files, or lead elsewhere."""


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _module_allowed(module: str) -> bool:
    return module.split(".")[0] in ALLOWED_MODULES


def _import_keys(node: ast.Import | ast.ImportFrom) -> set[tuple[str, str, str]]:
    module = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
    return {(module, alias.name, alias.asname or "") for alias in node.names}


def _bound_names(tree: ast.AST) -> set[str]:
    """Names a cell binds at module level (assignments, defs, imports, loops...)."""
    names: set[str] = set()
    for node in getattr(tree, "body", []):
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
            elif isinstance(sub, ast.alias):
                names.add((sub.asname or sub.name).split(".")[0])
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
    return names


def _parse(source: str) -> ast.Module | None:
    """Parse a cell as IPython runs it: magics and ``!`` become Python calls."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return None  # IPython will raise the SyntaxError itself, running nothing


class _Checker(ast.NodeVisitor):
    def __init__(self, protected: set[str], trusted_imports: set[tuple[str, str, str]]):
        self.protected = protected
        self.trusted_imports = trusted_imports
        self.problems: list[str] = []
        self.depth = 0  # 0 at module level, > 0 inside a function or lambda

    def flag(self, node: ast.AST, message: str) -> None:
        line = getattr(node, "lineno", "?")
        self.problems.append(f"line {line}: {message}")

    def check_binding(self, node: ast.AST, name: str) -> None:
        if self.depth == 0 and name in self.protected:
            self.flag(node, f"it rebinds `{name}`, which the tests rely on")

    def visit_Import(self, node: ast.Import) -> None:
        self.visit_any_import(node, [alias.name for alias in node.names])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.flag(node, "relative imports are not allowed")
            return
        self.visit_any_import(node, [node.module or ""])
        for alias in node.names:
            if alias.name == "*" or alias.name.startswith("_"):
                self.flag(node, f"it imports `{alias.name}` from {node.module}")
            elif alias.name in FORBIDDEN_ATTRIBUTES:
                self.flag(node, f"it imports `{alias.name}`, which reaches files")

    def visit_any_import(self, node: ast.Import | ast.ImportFrom, modules: list[str]):
        for module in modules:
            if not _module_allowed(module):
                self.flag(
                    node,
                    f"it imports `{module}`; answers may import only "
                    f"{', '.join(ALLOWED_MODULES)}",
                )
        if not _import_keys(node) <= self.trusted_imports:
            for alias in node.names:
                self.check_binding(node, (alias.asname or alias.name).split(".")[0])

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_NAMES or _is_dunder(node.id):
            self.flag(node, f"it uses `{node.id}`")
        if not isinstance(node.ctx, ast.Load):
            self.check_binding(node, node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr.startswith("_"):
            self.flag(node, f"it uses the private attribute `.{node.attr}`")
        elif node.attr in FORBIDDEN_ATTRIBUTES:
            self.flag(node, f"it uses `.{node.attr}`, which reaches files or modules")
        if not isinstance(node.ctx, ast.Load):
            self.flag(node, f"it assigns or deletes the attribute `.{node.attr}`")
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if _is_dunder(node.name):
            self.flag(node, f"it defines `{node.name}`")
        self.check_binding(node, node.name)
        for decorator in node.decorator_list:
            self.visit(decorator)
        self.visit(node.args)  # defaults are evaluated at module level
        if node.returns:
            self.visit(node.returns)
        self.depth += 1
        for statement in node.body:
            self.visit(statement)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.visit(node.args)
        self.depth += 1
        self.visit(node.body)
        self.depth -= 1

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.flag(node, "answers may not define classes")

    def visit_Global(self, node: ast.Global | ast.Nonlocal) -> None:
        self.flag(node, "answers may not use `global` or `nonlocal`")

    visit_Nonlocal = visit_Global

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.check_binding(node, node.name)
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        if _is_dunder(node.arg):
            self.flag(node, f"it uses `{node.arg}`")
        self.generic_visit(node)


def find_problems(
    source: str,
    protected: set[str] | frozenset[str] = frozenset(),
    trusted_imports: set[tuple[str, str, str]] | frozenset = frozenset(),
) -> list[str]:
    """Return why a student's code cell may not run, or ``[]`` when it may.

    Parameters
    ----------
    source
        The cell's code, magics included.
    protected
        Names the cell may not rebind at module level (builtins, the locked cells'
        names).
    trusted_imports
        ``(module, name, asname)`` of the locked cells' imports, which the cell may
        repeat.

    Returns
    -------
    list of str
        One ``"line N: ..."`` message per problem.

    Example
    -------
    >>> find_problems("import os")[0][:30]
    'line 1: it imports `os`; answe'
    >>> find_problems("def count(y):\\n    return len(y)")
    []
    """
    tree = _parse(source)
    if tree is None:
        return []
    checker = _Checker(set(protected), set(trusted_imports))
    checker.visit(tree)
    return checker.problems


def _is_locked_source(
    source: str, locked: dict[str, str], grade_id: str | None
) -> bool:
    """Whether source is the gradebook's locked cell, maybe after comment lines.

    nbgrader puts a deleted test cell back with a comment line on top.
    """
    original = locked.get(grade_id or "")
    if original is None or not source.endswith(original):
        return False
    prefix = source[: len(source) - len(original)]
    return all(
        not line.strip() or line.lstrip().startswith("#")
        for line in prefix.splitlines()
    )


def _protected_names(
    locked: dict[str, str], tests: set[str]
) -> tuple[set[str], set[tuple[str, str, str]]]:
    """Names an answer may not rebind, and the imports it may repeat.

    Protected are the builtins and every name that a test cell reads but does not
    set itself, when a locked setup cell sets it (``train_x``, ``np``, ``history``).
    """
    bound_by_setup: set[str] = set()
    read_by_tests: set[str] = set()
    trusted_imports: set[tuple[str, str, str]] = set()
    for grade_id, source in locked.items():
        tree = _parse(source)
        if tree is None:
            continue
        if grade_id in tests:
            loaded = {
                node.id
                for node in ast.walk(tree)
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
            }
            read_by_tests |= loaded - _bound_names(tree)
        else:
            bound_by_setup |= _bound_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                trusted_imports |= _import_keys(node)
    return set(dir(builtins)) | (bound_by_setup & read_by_tests), trusted_imports


class RestoreCells(OverwriteCells):
    """nbgrader's ``OverwriteCells``, safe against forged and deleted cells.

    In nbgrader 0.9.6, with ``add_missing_cells``, the whole notebook fails to grade
    (``KeyError``) when a student adds a cell with nbgrader metadata of their own, or
    deletes a test cell that follows a read-only cell. Here, nbgrader metadata whose
    ``grade_id`` is not in the gradebook (forged, renamed, or emptied by
    ``DeduplicateIds``) is dropped first, so the cell is an ordinary student cell; and
    a deleted test cell goes back after the nearest earlier cell still there.
    """

    def preprocess(
        self, nb: NotebookNode, resources: ResourcesDict
    ) -> tuple[NotebookNode, ResourcesDict]:
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gradebook:
            notebook = gradebook.find_notebook(info["notebook"], info["assignment"])
            known = {cell.name for cell in notebook.source_cells}
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader")
            if meta is not None and meta.get("grade_id") not in known:
                self.log.warning("Ignoring the nbgrader metadata of a cell: %s", meta)
                del cell.metadata["nbgrader"]
        return super().preprocess(nb, resources)

    def add_missing_grade_cells(
        self, nb: NotebookNode, resources: ResourcesDict
    ) -> tuple[NotebookNode, ResourcesDict]:
        source = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        order = [cell.name for cell in source.source_cells]
        cells = {cell.name: cell for cell in source.source_cells}
        solutions = {cell.name for cell in source.solution_cells}
        max_scores = {cell.name: cell.max_score for cell in source.grade_cells}
        for name in [name for name in order if name in max_scores]:
            where = {
                cell.metadata.get("nbgrader", {}).get("grade_id"): index
                for index, cell in enumerate(nb.cells)
            }
            if name in where:
                continue
            self.log.warning("Putting back the deleted test cell %s", name)
            earlier = [where[n] for n in order[: order.index(name)] if n in where]
            cell = self.missing_cell_transform(
                cells[name], max_scores[name], is_solution=name in solutions
            )
            if name not in {c.get("id") for c in nb.cells}:
                cell["id"] = name
            nb.cells.insert(max(earlier, default=-1) + 1, cell)
        return nb, resources


class GuardUntrustedCells(NbGraderPreprocessor):
    """Replace each untrusted code cell that breaks the rules by a ``raise``.

    Runs in ``Autograde.sanitize_preprocessors`` after :class:`RestoreCells`, so
    locked cells already hold the gradebook's source. A cell is trusted when its
    ``grade_id`` is a locked cell of the gradebook and its source is that cell's
    source; every other code cell is checked with :func:`find_problems`.
    """

    message = Unicode(
        "grading: this cell was not run because {problems}. Answers may use NumPy, "
        "Keras, math and course_utils; ask your instructor if you think this is wrong."
    ).tag(config=True)

    def preprocess(
        self, nb: NotebookNode, resources: ResourcesDict
    ) -> tuple[NotebookNode, ResourcesDict]:
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gradebook:
            notebook = gradebook.find_notebook(info["notebook"], info["assignment"])
            locked = {
                cell.name: cell.source
                for cell in notebook.source_cells
                if cell.locked and cell.cell_type == "code"
            }
            tests = {cell.name for cell in notebook.grade_cells}
        protected, trusted_imports = _protected_names(locked, tests)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if cell.cell_type != "code" or _is_locked_source(
                cell.source, locked, grade_id
            ):
                continue
            problems = find_problems(cell.source, protected, trusted_imports)
            if problems:
                reasons = "; ".join(problems)
                self.log.warning("Not running cell %s: %s", grade_id or "new", reasons)
                text = self.message.format(problems=reasons)
                cell.source = f"raise RuntimeError({text!r})"
        return nb, resources


_LIMIT_THEN_EXEC = """
import os, resource, sys
limits = {resource.RLIMIT_DATA: int(sys.argv[1]), resource.RLIMIT_FSIZE: int(sys.argv[2])}
for kind, value in limits.items():
    hard = resource.getrlimit(kind)[1]
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))
os.execv(sys.argv[3], sys.argv[3:])
"""


class LimitedKernelManager(AsyncKernelManager):
    """Start the kernel through a tiny launcher that sets ``setrlimit`` limits first."""

    memory_limit = Integer(0, help="Data-segment limit in bytes; 0 for none").tag(
        config=True
    )
    file_size_limit = Integer(0, help="Largest file the kernel may write, bytes").tag(
        config=True
    )

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if os.name != "posix" or not (self.memory_limit or self.file_size_limit):
            return cmd
        import resource

        def limit(value: int) -> str:
            return str(value or resource.RLIM_INFINITY)

        return [
            sys.executable,
            "-c",
            _LIMIT_THEN_EXEC,
            limit(self.memory_limit),
            limit(self.file_size_limit),
            *cmd,
        ]


class LimitedExecute(Execute):
    """nbgrader's ``Execute``, with the kernel started by :class:`LimitedKernelManager`.

    ``Execute`` passes its own kernel manager class to its parent, over any
    configuration, so the class is swapped here.
    """

    memory_limit = Integer(
        4 * 1024**3, help="Memory (RLIMIT_DATA) a grading kernel may allocate, bytes"
    ).tag(config=True)
    file_size_limit = Integer(
        64 * 1024**2, help="Largest file a grading kernel may write, in bytes"
    ).tag(config=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("kernel_manager_class", LimitedKernelManager)
        super().__init__(*args, **kwargs)

    def create_kernel_manager(self) -> AsyncKernelManager:
        manager = super().create_kernel_manager()
        manager.memory_limit = self.memory_limit
        manager.file_size_limit = self.file_size_limit
        return manager
