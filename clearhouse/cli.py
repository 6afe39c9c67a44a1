"""The ``clearhouse`` command: a thin entry point over the packages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clearhouse import __version__
from clearhouse.errors import ClearhouseError


def _cmd_demo(args: argparse.Namespace) -> int:
    from clearhouse.sim.demo import run_demo

    run_demo(chain_target=args.chain, out_dir=Path(args.out), preset=args.preset)
    return 0


def _cmd_compile(args: argparse.Namespace) -> int:
    from clearhouse.chain.artifacts import CONTRACTS_DIR, load_artifact

    names = args.names or sorted(
        p.relative_to(CONTRACTS_DIR).with_suffix("").as_posix()
        for p in CONTRACTS_DIR.rglob("*.vy") if p.parent.name not in ("lib", "interfaces")
    )
    for name in names:
        art = load_artifact(name)
        print(f"{name:<32} {len(art.bytecode):>6} bytes  {art.source_hash[:12]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clearhouse", description=__doc__)
    parser.add_argument("--version", action="version", version=f"clearhouse {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the end-to-end demo and write out/demo/summary.json")
    demo.add_argument("--chain", default="inprocess", help="'inprocess' (default) or a JSON-RPC URL")
    demo.add_argument("--out", default="out/demo", help="where to write summary.json")
    demo.add_argument("--preset", default="devnet", help="protocol parameter preset")
    demo.set_defaults(func=_cmd_demo)

    comp = sub.add_parser("compile", help="compile contracts (cached by source hash)")
    comp.add_argument("names", nargs="*", help="contract names relative to contracts/ (default: all)")
    comp.set_defaults(func=_cmd_compile)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ClearhouseError as exc:
        print(f"clearhouse: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("clearhouse: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
