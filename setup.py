"""Only what pyproject.toml cannot say: ship ``twin_gym_ids.pth`` at the top of site-packages
(see ``twin_gym_ids.py``). Everything else is in pyproject.toml."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithGymIds(build_py):
    def run(self) -> None:
        super().run()
        self.copy_file(str(Path(__file__).parent / "twin_gym_ids.pth"), str(Path(self.build_lib) / "twin_gym_ids.pth"))


setup(cmdclass={"build_py": BuildWithGymIds})
