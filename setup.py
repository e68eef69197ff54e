"""The one build step pyproject.toml cannot say: the top-level schema.sql goes into the package.

``schema.sql`` lives at the top of the repository, where the design puts the
one source of truth for a new database; the installed package must carry it
(``node.store`` reads it with importlib.resources). ``build_py`` copies it
into the built package, so a wheel holds it and no copy is kept by hand.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SCHEMA = Path(__file__).parent / "schema.sql"


class BuildPy(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "node" / "schema.sql"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SCHEMA, target)

    def get_outputs(self, include_bytecode=True):
        return [*super().get_outputs(include_bytecode),
                str(Path(self.build_lib) / "node" / "schema.sql")]


setup(cmdclass={"build_py": BuildPy})
