"""mask_detector/synthetic/dataset.py: the dataset is made from plain settings, not from a command line."""

import ast
from pathlib import Path

import mask_detector.synthetic


def test_the_package_reads_no_command_line():
    """make_masked_faces.py parses the flags; the package takes a Settings and never imports argparse or cli."""
    for path in Path(mask_detector.synthetic.__file__).parent.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        assert not imported & {"argparse", "mask_detector.cli"}, path.name
