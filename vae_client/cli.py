"""`vae-client`: the vae-serve API from the command line.

    vae-client sample -n 64 --seed 1 -o grid.png
    vae-client sample --digit 7 -n 16 -o sevens.png
    vae-client score digit.png --k 100               # prints JSON: log_likelihood, percentile...
    vae-client classify digit.png                    # prints JSON: digit, probabilities, mu
    vae-client encode digit.png                      # prints JSON: mu, sigma, kl
    vae-client encode digit.png | vae-client decode - -o decoded.png
    vae-client reconstruct digit.png -o out.png
    vae-client interpolate a.png b.png --steps 10 -o strip.png
    vae-client info

The service is $VAE_URL (default http://127.0.0.1:8000); the API key is $VAE_API_KEY.
Without -o, images go to stdout when it is a pipe or a file, else to a file in the current
folder whose name is printed (samples.png, decoded.png...).
"""

import argparse
import json
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from vae_client.api import VAEClient
from vae_client.errors import VAEError
from vae_client.results import Images


def latents_from_json(text: str) -> np.ndarray:
    """(N, D) from JSON: a vector, a list of vectors, {"z": ...}, or `encode` output (mu)."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"the latent vectors are not JSON ({e})") from None
    if isinstance(data, dict):
        data = data.get("z", [data])
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = [item["mu"] for item in data]
    z = np.asarray(data, dtype=np.float64)
    if z.ndim not in (1, 2) or z.size == 0:
        raise ValueError(f"expected a latent vector or a list of them, got shape {z.shape}")
    return np.atleast_2d(z)


def save(images: Images, args: argparse.Namespace, columns: int | None = None) -> None:
    """The PNG to -o, else to stdout when it is not a terminal, else to the default file."""
    grid = images.grid(columns, args.scale)
    count = f"{len(images)} image{'s' if len(images) > 1 else ''}"
    if args.output is None and not sys.stdout.isatty():
        grid.save(sys.stdout.buffer, format="PNG")
        sys.stdout.flush()
        print(f"wrote a PNG to stdout ({count})", file=sys.stderr)
        return
    output = args.output or Path(args.default_output)
    grid.save(output)
    print(f"wrote {output.resolve()} ({count})", file=sys.stderr)


def package_version() -> str:
    for name in ("vae-client", "vae-serve"):  # installed alone, or with the service
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return "unknown"


def vars_of(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The named options that this command has."""
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def json_ready(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in result.items()}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vae-client", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    p.add_argument("--url", help="service URL (default: $VAE_URL or http://127.0.0.1:8000)")
    p.add_argument("--api-key", help="API key (default: $VAE_API_KEY)")
    p.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per request (default: %(default)s)"
    )
    commands = p.add_subparsers(dest="command", required=True)
    defaults = argparse.ArgumentDefaultsHelpFormatter  # every command's --help shows defaults

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help, formatter_class=defaults)

    def image_command(name: str, help: str, default_output: str) -> argparse.ArgumentParser:
        sub = command(name, help)
        sub.add_argument(
            "-o",
            "--output",
            type=Path,
            help=f"PNG to write (default: stdout if it is not a terminal, else {default_output})",
        )
        sub.add_argument("--scale", type=int, default=4, help="upscaling of the PNG written")
        sub.set_defaults(default_output=default_output)
        return sub

    sample = image_command("sample", "draw images from the prior", "samples.png")
    sample.add_argument("-n", type=int, default=16, help="number of images")
    sample.add_argument("--seed", type=int, help="seed (printed when left out)")
    sample.add_argument("--temperature", type=float, default=1.0, help="z ~ N(0, t^2 I)")
    sample.add_argument("--digit", type=int, help="samples of this digit (0-9)")

    encode = command("encode", "print q(z|x) of images as JSON")
    encode.add_argument("images", nargs="+", type=Path)

    score = command("score", "print how likely images are, as JSON")
    score.add_argument("images", nargs="+", type=Path)
    score.add_argument("--k", type=int, default=100, help="importance samples")

    classify = command("classify", "print the digit of images, as JSON")
    classify.add_argument("images", nargs="+", type=Path)

    decode = image_command("decode", "decode latent vectors", "decoded.png")
    decode.add_argument(
        "z", help="JSON file ('-' for stdin): a vector, vectors, {\"z\": ...} or encode output"
    )

    reconstruct = image_command("reconstruct", "reconstruct images", "reconstruction.png")
    reconstruct.add_argument("images", nargs="+", type=Path)

    interpolate = image_command("interpolate", "interpolate between two images", "strip.png")
    interpolate.add_argument("start", type=Path)
    interpolate.add_argument("end", type=Path)
    interpolate.add_argument("--steps", type=int, default=8, help="points, both ends included")

    command("info", "print the model card as JSON")
    return p


def run(args: argparse.Namespace, vae: VAEClient) -> None:
    if args.command == "sample":
        images = vae.sample(args.n, args.seed, args.temperature, digit=args.digit)
        save(images, args)
        print(f"seed {images.seed}", file=sys.stderr)
    elif args.command == "encode":
        encodings = vae.encode(list(args.images))
        body = [e.to_json() for e in encodings]
        print(json.dumps(body[0] if len(body) == 1 else body))
    elif args.command in ("score", "classify"):
        results = getattr(vae, args.command)(list(args.images), **vars_of(args, "k"))
        body = [json_ready(vars(r)) for r in results]
        print(json.dumps(body[0] if len(body) == 1 else body))
    elif args.command == "decode":
        text = sys.stdin.read() if args.z == "-" else Path(args.z).read_text()
        save(vae.decode(latents_from_json(text)), args)
    elif args.command == "reconstruct":
        save(vae.reconstruct(list(args.images)), args)
    elif args.command == "interpolate":
        strip = vae.interpolate(args.start, args.end, args.steps)
        save(strip, args, columns=args.steps)
    elif args.command == "info":
        info = vae.model_info()
        print(json.dumps(vars(info), indent=2))


def main(argv: list[str] | None = None, http: Any = None) -> int:
    """Run one command; 0 on success, 1 (with a message on stderr) when the service refuses
    or cannot be reached. `http` injects an httpx.Client (tests)."""
    args = parser().parse_args(argv)
    try:
        with VAEClient(args.url, args.api_key, timeout=args.timeout, http=http) as vae:
            run(args, vae)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below
    except VAEError as e:
        print(f"vae-client: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `vae-client info | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (OSError, ValueError) as e:
        print(f"vae-client: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
