"""An offline stand-in for the Naver, Kakao Webtoon and KakaoPage web APIs.

``Catalogue`` is the seeded ground truth, ``serve`` puts it behind one HTTP port
in the platforms' real response shapes; ``python -m crawler.simulator`` runs it
as a process for the demo and the benchmarks.
"""

from .catalogue import Catalogue
from .server import SimulatorServer, serve

__all__ = ["Catalogue", "SimulatorServer", "serve"]
