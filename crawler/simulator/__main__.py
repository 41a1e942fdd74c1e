"""``python -m crawler.simulator``: run the platform simulator until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
from datetime import date
from types import FrameType

from .catalogue import Catalogue
from .server import SimulatorServer


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m crawler.simulator",
        description="Serve a seeded webtoon catalogue in the Naver / Kakao / KakaoPage API shapes.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=8123, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--titles", type=_non_negative, default=60,
                        help="total platform titles across the three platforms")
    parser.add_argument("--episodes", type=_positive, default=12,
                        help="episodes each title starts with (give or take two)")
    parser.add_argument("--malformed", type=_non_negative, default=0,
                        help="broken titles (and broken episodes) per platform")
    parser.add_argument("--oversized", type=_non_negative, default=0,
                        help="titles per platform with a synopsis, an author name and an "
                             "episode subtitle longer than the catalogue's columns")
    parser.add_argument("--throttle-every", type=_non_negative, default=0,
                        help="refuse every Nth API request with 429/503 (0: never)")
    parser.add_argument("--start-date", type=_day, default=date(2026, 11, 2),
                        help="the simulated today, YYYY-MM-DD")
    parser.add_argument("--public-url", default=None,
                        help="base URL for image links (default: the request's Host)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    catalogue = Catalogue(
        seed=args.seed,
        titles=args.titles,
        episodes=args.episodes,
        start_date=args.start_date,
        malformed=args.malformed,
        oversized=args.oversized,
    )
    server = SimulatorServer(
        catalogue,
        host=args.host,
        port=args.port,
        throttle_every=args.throttle_every,
        public_url=args.public_url,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        server.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"simulator listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
