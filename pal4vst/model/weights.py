"""Find model files: a path, or a release name looked up in the model folders, downloaded if absent.

Search order for a release name (``unified``, ``stylegan2``, ``portrait_shadow_removal``):
``$PAL4VST_MODELS`` -> host model folders registered with :func:`add_model_dir` (ComfyUI's and
the webui's ``models/pal4vst``) -> the user cache (``$XDG_CACHE_HOME/pal4vst`` or
``~/.cache/pal4vst``). A file is accepted as ``<name>.safetensors`` (converted), ``<name>.pth``
(the MMSegmentation release) or ``<name>.pt`` (the TorchScript release).

When nothing is found, the release is downloaded from the authors' Google Drive with ``gdown``
into a temporary file that is renamed into place only once it is complete and loads.
``hf://owner/repo/file`` goes through huggingface-hub and ``http(s)://`` URLs are fetched as is.
``$PAL4VST_MIRROR`` (a base URL) replaces Google Drive, for mirrors and for tests.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..files import atomic_write
from .checkpoint import CheckpointError, load_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Release:
    """A model the authors published: Google Drive ids of its MMSeg ``.pth`` and TorchScript files."""

    name: str
    pth_id: str
    torchscript_id: str
    description: str

    @property
    def filename(self) -> str:
        return f"{self.name}.pth"

    @property
    def url(self) -> str:
        return f"https://drive.google.com/uc?id={self.pth_id}"


RELEASES: dict[str, Release] = {
    r.name: r
    for r in (
        Release("unified", "1414RYir0Q58Ix2CKrZoDmA5iilx8Gopb", "1bGjEKquWa4cZJ6v52NoRfViwKK15U7vd",
                "trained on all ten synthesis tasks (the paper's unified model); the default"),
        Release("stylegan2", "1sHWQLwpt1eM36ttjdIdXLQIuLYftJoWR", "1FYId9CSmP0rEE1c-2E7aGaPD0WuRdX6o",
                "specialist for StyleGAN2 faces, animals and humans"),
        Release("portrait_shadow_removal", "1AOuSwSFwN5X1u6SYni8KehhjFquBpJ6Q", "1omx3lhYNRjJiPY49HoknVUwiy-J0uxcr",
                "specialist for portrait shadow removal results"),
    )
}


_SUFFIXES = (".safetensors", ".pth", ".pt")
_extra_dirs: list[Path] = []


class WeightsNotFound(FileNotFoundError):
    """No local file and no way to download it; the message says exactly where to put it."""


def add_model_dir(path: str | Path) -> None:
    """Register a host application's model folder (e.g. ComfyUI ``models/pal4vst``)."""
    p = Path(path)
    if p not in _extra_dirs:
        _extra_dirs.append(p)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pal4vst"


def model_dirs() -> list[Path]:
    """Folders searched for model files, in order."""
    dirs = [Path(p) for p in os.environ.get("PAL4VST_MODELS", "").split(os.pathsep) if p]
    return dirs + list(_extra_dirs) + [cache_dir()]


def list_local_models() -> list[Path]:
    """Every model file in the searched folders (for dropdowns)."""
    seen: dict[str, Path] = {}
    for d in model_dirs():
        if d.is_dir():
            for f in sorted(d.iterdir()):
                if f.suffix in _SUFFIXES and f.is_file() and f.name not in seen:
                    seen[f.name] = f
    return list(seen.values())


def find_local(name: str) -> Path | None:
    for d in model_dirs():
        for suffix in _SUFFIXES:
            p = d / f"{name}{suffix}"
            if p.is_file():
                return p
        p = d / name
        if p.is_file():
            return p
    return None


def resolve(source: str | Path, *, download: bool = True) -> Path:
    """A local path for ``source``: an existing file, a release name, a model file name in the
    model folders, an ``hf://`` source or an ``http(s)://`` URL (downloaded when absent)."""
    s = str(source)
    if s.startswith("hf://"):
        return _from_hub(s)
    if s.startswith(("http://", "https://")):
        dest = cache_dir() / Path(s.split("?")[0]).name
        return dest if dest.is_file() else _download_url(s, dest)
    p = Path(s).expanduser()
    if p.is_file():
        return p
    found = find_local(s)
    if found is not None:
        return found
    if s in RELEASES:
        if not download:
            raise WeightsNotFound(_how_to_get(RELEASES[s]))
        return download_release(s)
    if p.suffix or os.sep in s:
        raise WeightsNotFound(f"model file {s} not found (looked in: {', '.join(str(d) for d in model_dirs())})")
    raise WeightsNotFound(f"unknown model {s!r}: use a file path or one of {', '.join(RELEASES)}")


def preferred_dir() -> Path:
    """Where downloads go: ``$PAL4VST_MODELS``, else the host's model folder, else the user cache."""
    return model_dirs()[0]


def _how_to_get(release: Release, reason: str = "") -> str:
    why = f" ({reason[:200]})" if reason else ""
    return (
        f"the PAL4VST model {release.name} is not on this machine and could not be downloaded{why}.\n"
        f"  Download {release.filename} (MMSegmentation checkpoint) from {release.url}\n"
        f"  and put it in {preferred_dir()}/ (or the folder named by PAL4VST_MODELS),\n"
        f"  or pass its path directly (--model /path/to/{release.filename}).\n"
        f"  To try every command without it: python -m pal4vst.testing tiny tiny.safetensors --bright, then\n"
        f"  --model tiny.safetensors (a test model: it marks the image's bright areas)."
    )


def download_release(name: str, dest_dir: Path | None = None) -> Path:
    """Download a release into ``dest_dir`` (default: :func:`preferred_dir`) and return its path."""
    release = RELEASES[name]
    dest = (dest_dir or preferred_dir()) / release.filename
    mirror = os.environ.get("PAL4VST_MIRROR")
    try:
        if mirror:
            return _download_url(f"{mirror.rstrip('/')}/{release.filename}", dest)
        return _download_drive(release, dest)
    except WeightsNotFound as e:
        raise WeightsNotFound(_how_to_get(release, str(e))) from None


def _checked(fetch: Callable[[Path], None]) -> Callable[[Path], None]:
    """``fetch`` into a temporary file, then refuse (and remove) a file that is no usable checkpoint."""

    def write(tmp: Path) -> None:
        fetch(tmp)
        try:
            load_checkpoint(tmp)
        except CheckpointError as e:
            tmp.unlink(missing_ok=True)
            raise WeightsNotFound(f"the downloaded file is not a usable checkpoint: {e}") from None

    return write


def _download_url(url: str, dest: Path) -> Path:
    from tqdm import tqdm

    def fetch(tmp: Path) -> None:
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, tmp.open("wb") as out:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=None) as bar:
                    while chunk := resp.read(1 << 20):
                        out.write(chunk)
                        bar.update(len(chunk))
        except (OSError, ValueError) as e:
            raise WeightsNotFound(f"download of {url} failed: {e}") from None

    atomic_write(dest, _checked(fetch))
    log.info("saved %s", dest)
    return dest


def _download_drive(release: Release, dest: Path) -> Path:
    def fetch(tmp: Path) -> None:
        try:
            import gdown

            out = gdown.download(id=release.pth_id, output=str(tmp), quiet=False, resume=True)
        except Exception as e:  # gdown raises many kinds (requests, its own FileURLRetrievalError)
            raise WeightsNotFound(f"Google Drive download failed: {type(e).__name__}") from None
        if not out or not tmp.is_file():
            raise WeightsNotFound("Google Drive download failed")

    # A broken transfer keeps its .partial file: gdown resumes it on the next try.
    atomic_write(dest, _checked(fetch), partial=dest.with_name(dest.name + ".partial"))
    log.info("saved %s", dest)
    return dest


def _from_hub(source: str) -> Path:
    parts = source[len("hf://"):].split("/")
    if len(parts) < 3:
        raise WeightsNotFound(f"{source}: expected hf://owner/repo/path/to/file")
    repo, filename = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=repo, filename=filename))
    except Exception as e:
        raise WeightsNotFound(
            f"could not get {filename} from the Hugging Face repo {repo} ({type(e).__name__}: {e}). "
            f"Download it by hand and pass its path, or put it in {cache_dir()}/."
        ) from None
