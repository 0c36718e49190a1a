"""Where the tests' files are: the repository, the bundled sample image, the shared real-data folder beside it.
Test modules import these from here (a module name of its own: `conftest` names two files under tests/)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.png"
SHARED_DATA = REPO.parent / "shared" / "data"
